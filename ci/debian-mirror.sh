#!/usr/bin/env bash
# The Debian archive this machine's apt uses, for debootstrap and for the
# apt sources of images built from it, so that roots and images build
# behind a packager's own mirror or proxy.
#   ci/debian-mirror.sh            the main archive's URI (suites without -security)
#   ci/debian-mirror.sh security   the security archive's URI (suites ending -security)
# On Debian it reads deb822 /etc/apt/sources.list.d/*.sources, then one-line
# /etc/apt/sources.list and /etc/apt/sources.list.d/*.list ($APT_SOURCES_DIR
# replaces /etc/apt).  On another distribution (Ubuntu, ...; /etc/os-release,
# $OS_RELEASE replaces it) its apt sources are not Debian's: the main archive
# is debootstrap's own default for Debian ($DEBOOTSTRAP names the program),
# the security archive the same with "-security" appended, as Debian lays
# them out.  $MIRROR (main) or $SECURITY_MIRROR, when set, win everywhere.
# Prints nothing and exits 1, with one line on stderr, when none is found.
set -euo pipefail
which=${1:-main}
case $which in main|security) ;; *) echo "usage: $0 [main|security]" >&2; exit 2;; esac
if [ "$which" = main ] && [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; exit 0; fi
if [ "$which" = security ] && [ -n "${SECURITY_MIRROR:-}" ]; then echo "$SECURITY_MIRROR"; exit 0; fi
apt=${APT_SOURCES_DIR:-/etc/apt}

host=$( . "${OS_RELEASE:-/etc/os-release}" 2>/dev/null && echo "${ID:-}" ) || host=
if [ "$host" != debian ]; then
    main=${MIRROR:-}
    if [ -z "$main" ]; then
        program=${DEBOOTSTRAP:-$(command -v debootstrap || true)}
        main=$(sed -n 's/^DEF_MIRROR="\(.*\)"$/\1/p' "$program" 2>/dev/null | head -n 1 || true)
    fi
    if [ -z "$main" ]; then
        echo "debian-mirror: this is not Debian (${host:-unknown}) and debootstrap names no default Debian archive; set MIRROR" >&2
        exit 1
    fi
    main=${main%/}
    if [ "$which" = main ]; then echo "$main"; else echo "$main-security"; fi
    exit 0
fi

# One "URI SUITE..." line per deb source, from either format.
sources() {
    local f
    for f in "$apt"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # stanzas are separated by blank lines; fields may be continued
        awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no")
                                    for (i = 1; i <= n; i++) print uris[i], suites
                                types = ""; suites = ""; n = 0; enabled = "" }
             /^[ \t]*#/ { next }
             /^[ \t]*$/ { flush(); next }
             { key = tolower($1); sub(/:$/, "", key); $1 = "" ; sub(/^ +/, "")
               if (key == "types") types = $0
               else if (key == "uris") n = split($0, uris, " ")
               else if (key == "suites") suites = $0
               else if (key == "enabled") enabled = tolower($0) }
             END { flush() }' "$f"
    done
    for f in "$apt"/sources.list "$apt"/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
    done
}

found=$(sources | awk -v want="$which" '{
    for (i = 2; i <= NF; i++) {
        sec = ($i ~ /-security$/ || $i ~ /\/updates$/)
        if ((want == "security") == sec) { print $1; exit }
    } }')
if [ -z "$found" ]; then
    var=MIRROR; [ "$which" = main ] || var=SECURITY_MIRROR
    echo "debian-mirror: no $which Debian archive in $apt's apt sources; set $var" >&2
    exit 1
fi
echo "${found%/}"
