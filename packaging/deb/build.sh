#!/usr/bin/env bash
# Build dist/sentinel_<version>_<arch>.deb from this repository with dpkg-deb.
#
# Everything the package needs is gathered here, at build time, so installing
# it needs no network and no compiler:
#   - the CO-RE BPF object (make -C bpf: clang and bpftool, build time only);
#   - sentinel and its dependencies as wheels installed with Debian's own
#     /usr/bin/python3 (3.11) into /usr/lib/sentinel/python, so compiled
#     extensions (pydantic-core) match the interpreter that runs them;
#   - byte code compiled with that interpreter, in checked-hash mode so it
#     stays valid whatever mtimes dpkg or a container layer gives the sources.
#
# Usage: packaging/deb/build.sh [OUTDIR]   (default: dist/ in the repository)
# Environment: PYTHON (default /usr/bin/python3), SKIP_BPF_BUILD=1 to use an
# already built sentinel/bpf/sentinel.bpf.o.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
outdir=$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)
python=${PYTHON:-/usr/bin/python3}

for tool in dpkg-deb dpkg "$python"; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing" >&2; exit 1; }
done
# The wrapper's shebang is /usr/bin/python3 and the package depends on 3.11:
# building with anything else would ship extensions the target cannot load.
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$pyver" != "3.11" ]; then
    echo "build.sh: $python is Python $pyver; the package is built for Debian 12's python3 (3.11)" >&2
    exit 1
fi

version=$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")
arch=$(dpkg --print-architecture)
deb="$outdir/sentinel_${version}_${arch}.deb"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
lib="$root/usr/lib/sentinel/python"

# 1. The BPF object, shipped as package data of sentinel.bpf.
if [ "${SKIP_BPF_BUILD:-0}" != 1 ]; then
    make -s -C "$repo/bpf"
fi
[ -s "$repo/sentinel/bpf/sentinel.bpf.o" ] || { echo "build.sh: sentinel/bpf/sentinel.bpf.o is missing (make -C bpf)" >&2; exit 1; }

# 2. A wheel of sentinel, built from a copy so the work tree gets no build/
#    or egg-info droppings, and caches are not packaged.
mkdir -p "$work/src"
cp -a "$repo/pyproject.toml" "$repo/sentinel" "$work/src/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
"$python" -m venv "$work/buildenv"
"$work/buildenv/bin/pip" wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src"

# 3. Install it and its dependencies (binary wheels only: no compiler, and the
#    same artefacts every time) into the private library directory. --target
#    also writes console scripts with the build venv's shebang: drop them,
#    /usr/bin/sentinel is our own wrapper.
"$work/buildenv/bin/pip" install --quiet --no-compile --only-binary=:all: \
    --target "$lib" "$work"/wheels/sentinel-*.whl
rm -rf "$lib/bin"
[ -s "$lib/sentinel/bpf/sentinel.bpf.o" ] || { echo "build.sh: the wheel lacks sentinel.bpf.o" >&2; exit 1; }
"$python" -m compileall -q -j 0 --invalidation-mode checked-hash \
    -d /usr/lib/sentinel/python "$lib" >/dev/null

# 4. The rest of the payload.
install -D -m 0755 "$here/sentinel-wrapper" "$root/usr/bin/sentinel"
install -D -m 0644 "$repo/packaging/systemd/sentinel.service" "$root/lib/systemd/system/sentinel.service"
install -D -m 0644 "$here/policies.d-README" "$root/etc/sentinel/policies.d/README"
install -D -m 0644 "$repo/policies/baseline.yaml" "$root/usr/share/sentinel/policies/baseline.yaml"
install -d "$root/usr/share/sentinel/policies/examples"
install -m 0644 "$repo"/policies/examples/*.yaml "$root/usr/share/sentinel/policies/examples/"
install -D -m 0644 "$repo/packaging/README.md" "$root/usr/share/doc/sentinel/README.md"

# 5. Control area. Only the README under /etc is a conffile: the policies an
#    admin puts next to it are theirs and not the package's.
install -d "$root/DEBIAN"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"
printf '/etc/sentinel/policies.d/README\n' >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    "$here/control.in" >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

# Files owned by root whatever user runs the build; xz like Debian's archive.
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
