# bash completion for loopstall(1)
_loopstall() {
    local cur prev words cword
    _init_completion || return
    local sub="" w
    for w in "${words[@]:1:cword-1}"; do
        case $w in capture|report|status|top) sub=$w; break ;; esac
    done
    case $prev in
        --format) COMPREPLY=($(compgen -W 'text json' -- "$cur")); return ;;
        --output|--socket|--save) _filedir; return ;;
        --pid) COMPREPLY=($(compgen -W "$(command ls /proc 2>/dev/null | grep -E '^[0-9]+$')" -- "$cur")); return ;;
        --duration|--threshold-ms) return ;;
    esac
    case $sub in
        capture) COMPREPLY=($(compgen -W '--pid --duration --threshold-ms --format --output --all-loops
                                           --standalone --socket --save --help' -- "$cur")) ;;
        report) COMPREPLY=($(compgen -W '--format --help' -- "$cur")); [[ $cur == -* ]] || _filedir ;;
        top) COMPREPLY=($(compgen -W '--interval --sort --batch --count --pid --all-loops --threshold-ms --standalone --socket --help' -- "$cur")) ;;
        status) COMPREPLY=($(compgen -W '--socket --format --help' -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W 'capture report status top --help --version' -- "$cur")) ;;
    esac
} && complete -F _loopstall loopstall
