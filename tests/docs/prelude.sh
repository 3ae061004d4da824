# Sourced on the first line of every shell block the docs harness runs (see docsession.py).
# $__DOCS_DIR holds the session's files: the last block's variables and directory (state.sh),
# the line and status of a failing command (failed), background services (services/).

__docs_baseline=$(compgen -v)

__docs_failed() {  # the ERR trap: where the block stopped
    printf '%s %s\n' "$2" "$1" > "$__DOCS_DIR/failed"
}

__docs_save() {  # variables the docs defined, and the directory, for the next block
    local __docs_names
    __docs_names=$(compgen -v | grep -v -x -F -e "$__docs_baseline" | grep -v '^__docs' || true)
    {
        if [ -n "$__docs_names" ]; then
            # shellcheck disable=SC2086
            declare -p $__docs_names 2>/dev/null | sed -e 's/^declare -[a-zA-Z]*r[a-zA-Z]* /declare -- /' || true
        fi
        printf 'cd %q\n' "$PWD"
    } > "$__DOCS_DIR/state.sh"
}

__docs_expect() {  # expected status, actual status: the `<!-- test: exit N -->` directive
    if [ "$2" != "$1" ]; then
        printf '%s %s\n' "$3" "$2" > "$__DOCS_DIR/failed"
        printf 'exit %s, the doc says %s\n' "$2" "$1" > "$__DOCS_DIR/expected"
        exit 1
    fi
}

pip() {
    if [ "${1-}" = install ]; then
        echo "[docs harness] skipped: pip $* (the test environment has every extra; CI runs the README's installs in a fresh venv)"
        return 0
    fi
    command pip "$@" || return $?
}

python() {
    if [ "${1-}" = -m ] && [ "${2-}" = pytest ]; then
        echo "[docs harness] skipped: python $* (the test suite does not run inside itself)"
        return 0
    fi
    if [ "${1-}" = -m ] && [ "${2-}" = pip ]; then
        shift 2
        pip "$@" || return $?
        return 0
    fi
    if [ "${1-}" = -m ] && [ "${2-}" = tether ]; then
        shift 2
        tether "$@" || return $?
        return 0
    fi
    command python "$@" || return $?
}

tether() {
    case "${1-}" in
        serve|worker) command python "$__DOCS_SERVICE" run -- tether "$@" || return $? ;;
        *) command tether "$@" || return $? ;;
    esac
}

__docs_background() {
    command python "$__DOCS_SERVICE" start -- "$@" || return $?
}

if [ -f "$__DOCS_DIR/state.sh" ]; then
    # shellcheck disable=SC1091
    source "$__DOCS_DIR/state.sh"
fi
rm -f "$__DOCS_DIR/failed" "$__DOCS_DIR/expected"
set -e
trap '__docs_failed $? $LINENO' ERR
