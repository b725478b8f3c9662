#!/bin/sh
# deps.sh [PKG...] - install the Debian packages fetchtree needs (or the
# ones named, for the benchmarks); does nothing when they are all there
# already (so every make target can depend on it).
set -eu
if [ $# -gt 0 ]; then
  PKGS="$*"
else
PKGS="gcc make pkg-config luajit libluajit-5.1-dev libcurl4-openssl-dev libuv1-dev
zlib1g-dev lua-cjson lua-busted openssl ca-certificates nghttp2-server libxml2-dev libsqlite3-dev sqlite3 libxxhash-dev time
libedit-dev tmux lua-check redis-server libhiredis-dev"
# redis-server, libhiredis-dev: the redis state backend (state_redis.c)
# and its tests, which start their own redis-server. man-db: capi_spec reads the installed man page; sqlite3: state_spec reads
# and damages state databases with it. The rest are the libraries
# `pkg-config --static --libs libcurl` names, which libcurl4-openssl-dev only
# suggests: a static link with libfetchtree.a (capi_spec) needs them.
PKGS="$PKGS man-db libnghttp2-dev librtmp-dev libssh2-1-dev libpsl-dev libkrb5-dev
libldap-dev libzstd-dev"
fi
missing=""
for p in $PKGS; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
