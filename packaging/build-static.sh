#!/usr/bin/env bash
# Builds a fully static x86_64 Linux h2keepalive, live capture included, to copy into any
# container (kubectl cp) and run there: no libc, libpcap, D-Bus or systemd needed on the target.
#
# Route (docs/static-build.md): musl by default. libpcap comes from Debian's own source package
# (`apt-get source libpcap`, through a private deb-src list: /etc/apt is not touched), is built
# with musl-gcc as a static library without D-Bus, RDMA, Bluetooth, USB, netmap, libnl or remote
# capture, and the pcap crate links it (LIBPCAP_LIBDIR) into a x86_64-unknown-linux-musl build,
# which Rust links statically. Only apt, crates.io and the Rust toolchain's own target are used.
#
#   packaging/build-static.sh
#
# Environment (all optional):
#   STATIC_LIBC       musl (default) or glibc: glibc is linked statically with +crt-static instead
#                     (faster analysis of big files, but glibc warns that name lookups in a static
#                     binary need its own shared libraries at run time; see docs/static-build.md)
#   CARGO_TARGET_DIR  cargo's target directory             (default /tmp/target-static)
#   STATIC_WORK       libpcap source and build   (default $CARGO_TARGET_DIR/libpcap-$STATIC_LIBC-$DEBIAN_SUITE)
#   JOBS              cargo -j and make -j                  (default: cargo's and make's defaults)
#   LIBPCAP_SRC       an unpacked libpcap source tree to use instead of Debian's source package
#   DEBIAN_MIRROR     where deb-src comes from              (default http://deb.debian.org/debian)
#   DEBIAN_SECURITY_MIRROR                                  (default http://deb.debian.org/debian-security)
#   DEBIAN_SUITE      suite of the source package           (default: this system's codename; the
#                     newest libpcap of SUITE, SUITE-updates and SUITE-security is taken; trixie or
#                     sid give a newer libpcap, which builds the same way)
#
# Output: $CARGO_TARGET_DIR/static-musl/h2keepalive (static-glibc/ with STATIC_LIBC=glibc),
# stripped. Exits non-zero if anything fails or the result is not a static executable.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIBC=${STATIC_LIBC:-musl}
case "$LIBC" in
    musl) TARGET=x86_64-unknown-linux-musl ;;
    glibc) TARGET=x86_64-unknown-linux-gnu ;;
    *) echo "build-static: STATIC_LIBC must be musl or glibc, not '$LIBC'" >&2; exit 1 ;;
esac
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-static}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=${DEBIAN_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
WORK=${STATIC_WORK:-$CARGO_TARGET_DIR/libpcap-$LIBC-$SUITE}
OUT_DIR=$CARGO_TARGET_DIR/static-$LIBC
JOBS=${JOBS:-}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-static: %s\n' "$*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "this script builds on and for x86_64 only"

# --- 1. Tools (apt) -------------------------------------------------------------------------
# musl-tools: musl-gcc; flex + bison: libpcap's filter grammar; dpkg-dev: dpkg-source to unpack
# Debian's source package; linux-libc-dev: the kernel headers pcap-linux.c needs; libc6-dev:
# glibc's libc.a; file: the report.
pkgs=(flex bison make gcc dpkg-dev linux-libc-dev libc6-dev binutils file)
[ "$LIBC" = musl ] && pkgs+=(musl-tools)
need=()
for pkg in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    say "installing with apt: ${need[*]}"
    [ "$(id -u)" = 0 ] || die "run as root, or install first: apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    say "adding the Rust target $TARGET"
    rustup target add "$TARGET"
fi

# --- 2. libpcap source ------------------------------------------------------------------------
mkdir -p "$WORK"
if [ -n "${LIBPCAP_SRC:-}" ]; then
    SRC=$(cd "$LIBPCAP_SRC" && pwd)
else
    if ! ls -d "$WORK"/src/libpcap-*/ >/dev/null 2>&1; then
        say "fetching Debian's libpcap source package ($SUITE)"
        apt_dir=$WORK/apt
        mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$WORK/src"
        {
            echo "deb-src $MIRROR $SUITE main"
            case "$SUITE" in
                sid|unstable|experimental) ;;
                *) echo "deb-src $MIRROR $SUITE-updates main"
                   echo "deb-src $SECURITY_MIRROR $SUITE-security main" ;;
            esac
        } > "$apt_dir/sources.list"
        apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
                  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
                  -o APT::Sandbox::User=root)
        apt-get "${apt_opts[@]}" -qq update
        # apt checks the .dsc, tarball and Debian patches against the signed Sources index;
        # dpkg-source checks them against the .dsc again (it cannot check the .dsc's own signature
        # without the debian-keyring package, and says so in its log).
        (cd "$WORK/src" && apt-get "${apt_opts[@]}" -qq source --download-only libpcap)
        (cd "$WORK/src" && dpkg-source -x libpcap_*.dsc > "$WORK/dpkg-source.log" 2>&1) \
            || { cat "$WORK/dpkg-source.log" >&2; die "dpkg-source failed"; }
    fi
    SRC=$(ls -d "$WORK"/src/libpcap-*/ | sort -V | tail -n1)
    SRC=${SRC%/}
fi
PCAP_VERSION=$(cat "$SRC/VERSION")
say "libpcap $PCAP_VERSION from $SRC"

# --- 3. libpcap.a ------------------------------------------------------------------------------
LIB_DIR=$WORK/lib
if [ ! -f "$LIB_DIR/libpcap.a" ] || [ ! -f "$LIB_DIR/.version" ] || [ "$(cat "$LIB_DIR/.version")" != "$PCAP_VERSION" ]; then
    if [ "$LIBC" = musl ]; then
        # musl-gcc sees only musl's headers; pcap-linux.c also needs the kernel's (linux/, asm/,
        # asm-generic/ from linux-libc-dev), given here as a directory of links.
        kinc=$WORK/kernel-include
        mkdir -p "$kinc"
        ln -sfn /usr/include/linux "$kinc/linux"
        ln -sfn /usr/include/asm-generic "$kinc/asm-generic"
        ln -sfn /usr/include/x86_64-linux-gnu/asm "$kinc/asm"
        cc="musl-gcc -isystem $kinc"
    else
        cc=gcc
    fi
    build=$WORK/build
    rm -rf "$build"
    cp -a "$SRC" "$build"
    say "configuring libpcap (no D-Bus, RDMA, Bluetooth, USB, netmap, libnl, remote)"
    (cd "$build" && CC="$cc" CFLAGS="-O2" ./configure \
        --disable-shared --with-pcap=linux \
        --disable-dbus --disable-rdma --disable-bluetooth --disable-usb --disable-netmap \
        --without-libnl --without-dpdk --disable-remote \
        > "$WORK/configure.log" 2>&1) || { tail -30 "$WORK/configure.log" >&2; die "libpcap configure failed ($WORK/configure.log)"; }
    say "building libpcap.a ($LIBC)"
    (cd "$build" && make ${JOBS:+-j"$JOBS"} libpcap.a > "$WORK/make.log" 2>&1) \
        || { tail -30 "$WORK/make.log" >&2; die "libpcap build failed ($WORK/make.log)"; }
    mkdir -p "$LIB_DIR"
    cp "$build/libpcap.a" "$LIB_DIR/libpcap.a"   # only the .a in this directory: nothing else to pick
    echo "$PCAP_VERSION" > "$LIB_DIR/.version"
fi

# --- 4. h2keepalive -------------------------------------------------------------------------
# LIBPCAP_LIBDIR: the pcap crate's build script adds it to the link search path (and skips
# pkg-config, which would name the system's libpcap.so and its D-Bus); LIBPCAP_VER: the version,
# since there is no libpcap.so there for the build script to ask. The musl target links
# statically by default; glibc needs +crt-static. With --target, RUSTFLAGS reach only the target's
# crates, not build scripts or proc-macros.
if [ "$LIBC" = glibc ]; then
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"
fi
say "cargo build --release --target $TARGET (target dir $CARGO_TARGET_DIR)"
(cd "$ROOT" && LIBPCAP_LIBDIR="$LIB_DIR" LIBPCAP_VER="$PCAP_VERSION" \
    cargo build --release --target "$TARGET" --bin h2keepalive ${JOBS:+-j "$JOBS"})

BIN=$CARGO_TARGET_DIR/$TARGET/release/h2keepalive
mkdir -p "$OUT_DIR"
cp "$BIN" "$OUT_DIR/h2keepalive"
strip "$OUT_DIR/h2keepalive"
BIN=$OUT_DIR/h2keepalive

# --- 5. Checks and report ---------------------------------------------------------------------
if readelf -lW "$BIN" | grep -q 'Requesting program interpreter' || readelf -dW "$BIN" | grep -q '(NEEDED)'; then
    readelf -dW "$BIN" | grep NEEDED >&2 || true
    die "$BIN is not static"
fi
"$BIN" --version >/dev/null || die "$BIN --version failed"

echo
echo "binary   $BIN"
echo "size     $(stat -c %s "$BIN") bytes ($(du -h "$BIN" | cut -f1))"
echo "libpcap  $(grep -a -o -m1 'libpcap version [0-9.]*[^)]*)' "$BIN" | head -n1)"
echo "version  $("$BIN" --version)"
echo "file     $(file -b "$BIN")"
echo "ldd      $(ldd "$BIN" 2>&1 | tr -s '\t ' ' ' | sed 's/^ //')"
