# bash completion for loopstalld(8)
_loopstalld() {
    local cur prev words cword
    _init_completion || return
    case $prev in
        --config) _filedir json; return ;;
        --events|--control-socket) _filedir; return ;;
        --metrics-listen|--threshold-ms) return ;;
    esac
    COMPREPLY=($(compgen -W '--config --metrics-listen --threshold-ms --control-socket --events
                               --check-config --help --version' -- "$cur"))
} && complete -F _loopstalld loopstalld
