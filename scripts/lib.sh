# Shared by scripts/demo and scripts/test: install what the project needs.
# Debian packages come from apt (as root), Python packages into ./.venv.

set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

# Install the Debian packages that are missing.
need_debs() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # We run our own private slapd: tell the package not to set up a system directory.
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null || true
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# A Python 3.11+ interpreter, installed from Debian if there is none.
python_bin() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    need_debs python3 python3-venv python3-pip
    command -v python3
}

# ./.venv with the project (editable) and the given extras.
ensure_venv() {
    local extras="$1"
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        "$(python_bin)" -m venv .venv || { need_debs python3-venv; "$(python_bin)" -m venv .venv; }
    fi
    local stamp=".venv/.installed-$extras"
    if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
        log "installing iredldap$extras into .venv"
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null
        # (setuptools warns about editable installs with mapped folders; harmless)
        PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".$extras"
        touch "$stamp"
    fi
}
