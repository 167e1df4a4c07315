#!/usr/bin/env bash
# Package test (docs/operations.md "Run as a service"): builds the Debian packages with CPack
# in a build folder of its own, checks the unit with systemd-analyze, installs both packages
# with dpkg -i, checks their files, the schedd user and the conffile, runs the installed
# binaries as the schedd user (check-config, plugins, doctor when present, the daemon itself
# with two runs through the installed runner), builds a plugin against the installed SDK, then
# removes and purges and checks that nothing is left but what a purge keeps (the schedd user).
#
#   scripts/test-package.sh [BUILD_DIR]            default: build/package, a Release build
#   scripts/test-package.sh --reuse BUILD_DIR      package what BUILD_DIR has already built
#
# --reuse is how scripts/test.sh runs it: the dev build's binaries are packaged (stripped, as
# always) instead of compiling everything again at -O2, which took CI 5-10 minutes. Only the
# packaging files depend on the install prefix, so setting it to /usr for the packaging
# recompiles nothing; the build folder gets its own prefix back at the end.
#
# It installs into this system, so it runs as root only (CI's machine is thrown away after);
# as another user it says so and exits 0. scripts/test.sh runs it once per CI run.
# Environment: SCHEDD_PACKAGE_BUILD_TYPE (default Release, at -O2 as Debian builds).
set -euo pipefail
shopt -s extglob
cd "$(dirname "$0")/.."
src=$PWD
reuse=0
if [[ ${1:-} == --reuse ]]; then
  reuse=1
  shift
  [[ -n ${1:-} && -f $1/CMakeCache.txt ]] || {
    echo "test-package: --reuse needs a configured build folder" >&2
    exit 2
  }
fi
build=${1:-build/package}
build_type=${SCHEDD_PACKAGE_BUILD_TYPE:-Release}

say() { echo "test-package: $*"; }
fail() {
  echo "test-package: FAIL: $*" >&2
  exit 1
}

if [[ $(id -u) -ne 0 ]]; then
  # A CI machine that is not root but may sudo (as scripts/setup.sh does) runs it under sudo.
  if [[ -n ${CI:-} ]] && sudo -n true 2>/dev/null; then
    if ((reuse)); then set -- --reuse "$@"; fi
    exec sudo -n --preserve-env=PATH,CI bash "$0" "$@"
  fi
  say "SKIP: installs .deb packages into this system and needs root (CI runs it as root)"
  exit 0
fi
for p in schedd schedd-dev; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "installed"; then
    fail "package $p is already installed here; purge it first (dpkg --purge schedd-dev schedd)"
  fi
done

# dpkg-shlibdeps (dpkg-dev) and file compute the Depends; systemd brings systemd-analyze and
# systemd-sysusers; curl asks the API; cmake, ninja, g++ come from scripts/setup.sh.
source scripts/lib/install-missing.sh
install_missing dpkg-dev file systemd curl

tmp=$(mktemp -d "${TMPDIR:-/tmp}/schedd-package-XXXXXX")
chmod 0755 "$tmp"
daemon_pid=""
installed=0
old_prefix=""
cleanup() {
  local rc=$?
  if ((reuse)) && [[ -n $old_prefix ]]; then
    cmake -S "$src" -B "$build" "-DCMAKE_INSTALL_PREFIX=$old_prefix" >/dev/null 2>&1 || true
    rm -rf "$build/_CPack_Packages" "$build"/*.deb
  fi
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  if ((installed)); then
    # A failed run leaves this system as it found it (but for the schedd user).
    dpkg --purge schedd-dev schedd >/dev/null 2>&1 || true
  fi
  if ((rc != 0)) && [[ -f $tmp/daemon.log ]]; then
    echo "--- daemon log" >&2
    tail -n 40 "$tmp/daemon.log" >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Runs a command with its output in $tmp/<log>.log, shown only when it fails.
logged() {
  local log=$tmp/$1.log
  shift
  local rc=0
  "$@" >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    cat "$log" >&2
    fail "$* (exit $rc)"
  fi
}

# 1. Build and package. Only the shipped targets: no tests.
if ((reuse)); then
  old_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
  say "packaging what $build has built ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' \
    "$build/CMakeCache.txt"))"
  logged configure cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr
  logged build cmake --build "$build" --target schedd schedctl schedd-runner plugins
else
  say "building the packages in $build ($build_type)"
  logged configure cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" \
    -DSCHEDD_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr
  logged build cmake --build "$build"
fi
rm -f "$build"/*.deb
(cd "$build" && logged cpack cpack -G DEB)
deb=$(ls "$build"/schedd_*.deb)
dev_deb=$(ls "$build"/schedd-dev_*.deb)
say "built $(basename "$deb") and $(basename "$dev_deb")"

# 2. What the packages say about themselves.
depends=$(dpkg-deb -f "$deb" Depends)
for d in tzdata libspdlog libsqlite3 libhiredis libtomlplusplus libstdc++6; do
  [[ $depends == *"$d"* ]] || fail "schedd does not depend on $d: $depends"
done
[[ $(dpkg-deb -I "$deb" conffiles) == "/etc/schedd/schedd.toml" ]] ||
  fail "conffiles of schedd: $(dpkg-deb -I "$deb" conffiles)"
for s in postinst prerm postrm; do
  dpkg-deb -I "$deb" "$s" >/dev/null || fail "schedd has no $s"
done
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\.||' >"$tmp/files-daemon"
dpkg-deb -c "$dev_deb" | awk '{print $6}' | sed 's|^\.||' >"$tmp/files-dev"
if grep -q '^/usr/include\|/cmake/' "$tmp/files-daemon"; then fail "the SDK is in schedd"; fi
if grep -q '^/usr/bin\|^/etc' "$tmp/files-dev"; then fail "schedd-dev holds more than the SDK"; fi

# 3. Install both.
installed=1
logged install dpkg -i "$deb" "$dev_deb"
for f in /usr/bin/schedd /usr/bin/schedctl /usr/lib/schedd/schedd-runner; do
  [[ -x $f ]] || fail "$f is not installed (or not executable)"
done
for p in noop sleep shell ticket; do
  [[ -f /usr/lib/schedd/plugins/$p.so ]] || fail "plugin $p.so is not in /usr/lib/schedd/plugins"
done
for f in /etc/schedd/schedd.toml /usr/lib/systemd/system/schedd.service \
  /usr/lib/sysusers.d/schedd.conf /usr/include/schedd/abi.h /usr/include/schedd/sdk.hpp; do
  [[ -f $f ]] || fail "$f is not installed"
done
ls /usr/lib/*/cmake/schedd_sdk/schedd_sdkConfig.cmake >/dev/null 2>&1 ||
  fail "the SDK's CMake package is not installed"
dpkg-query -W -f='${Conffiles}\n' schedd | grep -q '^ /etc/schedd/schedd.toml ' ||
  fail "dpkg does not treat /etc/schedd/schedd.toml as a conffile"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd schedd) || fail "no schedd user"
((uid > 0 && uid < 1000)) || fail "schedd is not a system user (uid $uid)"
[[ $home == /var/lib/schedd && $shell == */nologin ]] ||
  fail "schedd user: home $home, shell $shell"
getent group schedd >/dev/null || fail "no schedd group"
[[ $(stat -c '%U:%G %a' /var/lib/schedd) == "schedd:schedd 750" ]] ||
  fail "/var/lib/schedd is $(stat -c '%U:%G %a' /var/lib/schedd)"
installed_size=$(dpkg-query -W -f='${Installed-Size}' schedd)
du_size=$(dpkg -L schedd | while read -r f; do if [[ -f $f ]]; then echo "$f"; fi; done |
  xargs du -ck | tail -n 1 | cut -f1)
say "schedd Installed-Size ${installed_size} KiB (du of its files: ${du_size} KiB)," \
  "schedd-dev $(dpkg-query -W -f='${Installed-Size}' schedd-dev) KiB"

# 4. The unit, against the installed binaries.
logged verify systemd-analyze verify /usr/lib/systemd/system/schedd.service
if systemd-analyze security --offline=true /usr/lib/systemd/system/schedd.service \
  >"$tmp/security.log" 2>&1; then
  say "$(grep -o 'Overall exposure level.*' "$tmp/security.log")"
fi

# 5. The installed programs, as the service user, from its state folder, on the installed
#    config (the unit's ExecStart runs `schedd run -c /etc/schedd/schedd.toml` the same way).
as_schedd() { (cd /var/lib/schedd && setpriv --reuid=schedd --regid=schedd --init-groups "$@"); }
logged check-config as_schedd /usr/bin/schedd check-config /etc/schedd/schedd.toml
logged plugins as_schedd /usr/bin/schedd plugins -c /etc/schedd/schedd.toml
for p in noop sleep shell ticket; do
  grep -q "$p" "$tmp/plugins.log" || fail "schedd plugins does not list $p"
done
# schedd doctor (issue #17 point 6), when the installed daemon has it, so this test keeps
# working on older trees. --listen 127.0.0.1:0: port 7878 may be taken on a developer's machine.
if /usr/bin/schedd --help 2>/dev/null | grep -q "^  doctor "; then
  logged doctor as_schedd /usr/bin/schedd doctor -c /etc/schedd/schedd.toml --listen 127.0.0.1:0
  say "schedd doctor: $(tail -n 1 "$tmp/doctor.log")"
  grep '^warn' "$tmp/doctor.log" | sed 's/^/  /' || true
else
  say "schedd doctor: not in this build; skipped"
fi

# 6. The installed daemon, as schedd, on the installed config, with the API on a free port
#    (port 7878 may be taken on a developer's machine) and the store in /var/lib/schedd.
(cd /var/lib/schedd && exec setpriv --reuid=schedd --regid=schedd --init-groups \
  /usr/bin/schedd run -c /etc/schedd/schedd.toml --listen 127.0.0.1:0) >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
addr=""
for _ in $(seq 1 300); do
  addr=$(grep -o 'listening on http://[^ ]*' "$tmp/daemon.log" | head -n 1 | sed 's|.*http://||') ||
    true
  [[ -n $addr ]] && break
  kill -0 "$daemon_pid" 2>/dev/null || fail "the installed daemon exited at start"
  sleep 0.1
done
[[ -n $addr ]] || fail "the installed daemon did not say where it listens within 30 s"
logged status /usr/bin/schedctl --addr "$addr" status
logged submit-noop /usr/bin/schedctl --addr "$addr" submit noop --id pkg-noop
logged submit-shell /usr/bin/schedctl --addr "$addr" submit shell --id pkg-shell \
  -p command=sh -p 'args=["-c", "echo from the shell plugin"]'
for id in pkg-noop pkg-shell; do
  status=""
  for _ in $(seq 1 300); do
    status=$(curl -fsS "http://$addr/v1/executions/$id" | grep -o '"status":"[a-z_]*"' |
      head -n 1 | cut -d'"' -f4) || true
    [[ $status == succeeded || $status == failed ]] && break
    sleep 0.1
  done
  [[ $status == succeeded ]] || fail "execution $id through the installed runner: ${status:-?}"
done
[[ $(stat -c '%U' /var/lib/schedd/schedd.db) == schedd ]] ||
  fail "the store is not owned by schedd"
# ExecReload= sends SIGHUP: the daemon reloads and keeps serving.
kill -HUP "$daemon_pid"
sleep 1
kill -0 "$daemon_pid" 2>/dev/null || fail "the installed daemon ended on SIGHUP"
logged status-after-hup /usr/bin/schedctl --addr "$addr" status
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=""
((rc == 0)) || fail "the installed daemon exited $rc on SIGTERM"
left=$(for d in /proc/[0-9]*; do
  [[ $(stat -c %U "$d" 2>/dev/null) == schedd ]] && echo "${d#/proc/}"
done || true)
[[ -z $left ]] || fail "processes of schedd outlived the daemon: $left"
say "installed daemon: started, ran noop and shell through /usr/lib/schedd/schedd-runner, stopped"

# 7. A plugin built against the installed SDK (schedd-dev), loaded by the installed daemon.
logged hello-configure cmake -S "$src/examples/hello" -B "$tmp/hello" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release
logged hello-build cmake --build "$tmp/hello"
mkdir -p "$tmp/hello-plugins"
cp "$tmp/hello/hello.so" /usr/lib/schedd/plugins/*.so "$tmp/hello-plugins/"
chmod -R a+rX "$tmp/hello-plugins"
logged hello-plugins as_schedd /usr/bin/schedd plugins -c /etc/schedd/schedd.toml \
  --plugin-dir "$tmp/hello-plugins"
grep -q hello "$tmp/hello-plugins.log" || fail "the plugin built on schedd-dev did not load"

# 8. Remove: the programs go; config, state and user stay.
logged remove dpkg --remove schedd-dev schedd
# Left behind: a file of the packages, or a folder of their own (shared ones like /usr/lib/
# stay). `keep` is what may stay.
left_behind() {
  local keep=$1 f
  for f in $(cat "$tmp/files-daemon" "$tmp/files-dev"); do
    [[ $f == $keep ]] && continue
    if [[ $f == */ ]]; then
      [[ $f == *schedd* && -e $f ]] && echo "$f"
    elif [[ -e $f ]]; then
      echo "$f"
    fi
  done
  return 0
}
left=$(left_behind "/etc/schedd/@(|schedd.toml)")
[[ -z $left ]] || fail "left after remove: $left"
[[ -f /etc/schedd/schedd.toml ]] || fail "remove took the conffile"
[[ -f /var/lib/schedd/schedd.db ]] || fail "remove took the store"
[[ $(dpkg-query -W -f='${Status}' schedd) == "deinstall ok config-files" ]] ||
  fail "schedd after remove: $(dpkg-query -W -f='${Status}' schedd)"

# 9. Purge: config and state go too; the user stays (postrm says why).
logged purge dpkg --purge schedd-dev schedd
installed=0
left=$(left_behind "")
[[ -z $left ]] || fail "left after purge: $left"
[[ ! -e /var/lib/schedd ]] || fail "/var/lib/schedd is left after purge"
[[ ! -e /etc/schedd ]] || fail "/etc/schedd is left after purge"
if dpkg-query -W -f='${Status}' schedd 2>/dev/null | grep -q .; then
  status=$(dpkg-query -W -f='${Status}' schedd)
  [[ $status == "unknown ok not-installed" || $status == "purge ok not-installed" ]] ||
    fail "schedd after purge: $status"
fi
getent passwd schedd >/dev/null || fail "purge removed the schedd user (it should stay)"
say "ok: built, installed, ran, removed and purged; the schedd user stays, as designed"
