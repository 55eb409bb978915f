# bash completion for loopstall(1)
_loopstall() {
    local cur prev words cword
    _init_completion || return
    local sub="" w
    for w in "${words[@]:1:cword-1}"; do
        case $w in capture|report|flamegraph|diff|status|top) sub=$w; break ;; esac
    done
    case $prev in
        --format)
            if [[ $sub == flamegraph ]]; then COMPREPLY=($(compgen -W 'svg folded speedscope' -- "$cur"))
            else COMPREPLY=($(compgen -W 'text json' -- "$cur")); fi
            return ;;
        --output|-o|--socket|--save) _filedir; return ;;
        --pid) COMPREPLY=($(compgen -W "$(command ls /proc 2>/dev/null | grep -E '^[0-9]+$')" -- "$cur")); return ;;
        --sort) COMPREPLY=($(compgen -W 'util iter p99 stalls churn pid' -- "$cur")); return ;;
        --duration|--threshold-ms|--interval|--count) return ;;
    esac
    case $sub in
        capture) COMPREPLY=($(compgen -W '--pid --duration --threshold-ms --format --output --all-loops
                                           --standalone --socket --save --coalesce --help' -- "$cur")) ;;
        report) COMPREPLY=($(compgen -W '--format --help' -- "$cur")); [[ $cur == -* ]] || _filedir ;;
        flamegraph) COMPREPLY=($(compgen -W '-o --output --format --folded --help' -- "$cur")); [[ $cur == -* ]] || _filedir ;;
        diff) COMPREPLY=($(compgen -W '-o --output --help' -- "$cur")); [[ $cur == -* ]] || _filedir ;;
        top) COMPREPLY=($(compgen -W '--interval --sort --batch --count --pid --all-loops --threshold-ms --standalone --socket --help' -- "$cur")) ;;
        status) COMPREPLY=($(compgen -W '--socket --format --help' -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W 'capture report flamegraph diff status top --help --version' -- "$cur")) ;;
    esac
} && complete -F _loopstall loopstall
