#!/usr/bin/env bash
# Build and run the fuzz targets with libFuzzer on a *stable* toolchain, with or without cargo-fuzz.
# It passes rustc the same coverage flags `cargo fuzz build --sanitizer none` passes (all of them are
# stable -C flags; only the sanitizers need nightly), plus debug assertions and overflow checks.
#
#   fuzz/fuzz.sh build                    build every target (profile release, like cargo-fuzz)
#   fuzz/fuzz.sh run TARGET [FLAG...]     fuzz TARGET; corpus fuzz/corpus/TARGET (grown, git-ignored)
#                                         plus the committed seeds fuzz/seeds/TARGET; FLAGs go to libFuzzer
#   fuzz/fuzz.sh smoke SECONDS            build with the quicker `smoke` profile, run each target
#                                         SECONDS on its seeds (new inputs to a scratch folder);
#                                         fails on any finding
#   fuzz/fuzz.sh list                     the target names
#
# CARGO_TARGET_DIR (default fuzz/target) and FUZZ_RSS_MB (default 2048) are honoured.
# FUZZ_ASAN=1 adds AddressSanitizer (default target dir fuzz/target-asan). Sanitizers are unstable
# rustc flags: on a stable toolchain that takes RUSTC_BOOTSTRAP=1, which this then sets. Say so when
# quoting results of such runs.
# docs/RELIABILITY.md, section "Fuzzing", says what was run and what was found.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
targets=(pickle torch_zip safetensors image)
triple=$(rustc -vV | sed -n 's/^host: //p')
asan=${FUZZ_ASAN:-0}
if [ "$asan" = 1 ]; then target_dir=${CARGO_TARGET_DIR:-$here/target-asan}; else target_dir=${CARGO_TARGET_DIR:-$here/target}; fi
rss_mb=${FUZZ_RSS_MB:-2048}

flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
flags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

build() { # build PROFILE
    local extra=""
    # cargo-fuzz's choice for release: one codegen unit, or ThinLTO cannot inline across the sancov pass.
    [ "$1" = release ] && extra=" -Ccodegen-units=1"
    if [ "$asan" = 1 ]; then
        extra+=" -Zsanitizer=address"
        export RUSTC_BOOTSTRAP=1
    fi
    # --target keeps RUSTFLAGS away from build scripts and proc macros (they must not be instrumented).
    RUSTFLAGS="$flags$extra ${RUSTFLAGS:-}" CARGO_TARGET_DIR="$target_dir" \
        cargo build --locked --manifest-path "$here/Cargo.toml" --target "$triple" --profile "$1" --bins
}
bin() { echo "$target_dir/$triple/$1/$2"; }
check_target() {
    local t
    for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done
    echo "unknown target '$1' (targets: ${targets[*]})" >&2
    exit 2
}

cmd=${1:-}
shift || true
case "$cmd" in
list)
    printf '%s\n' "${targets[@]}"
    ;;
build)
    build release
    ;;
run)
    t=${1:?usage: fuzz/fuzz.sh run TARGET [libFuzzer flags]}
    shift
    check_target "$t"
    build release
    mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
    exec "$(bin release "$t")" -rss_limit_mb="$rss_mb" -timeout=10 -artifact_prefix="$here/artifacts/$t/" \
        "$@" "$here/corpus/$t" "$here/seeds/$t"
    ;;
smoke)
    secs=${1:?usage: fuzz/fuzz.sh smoke SECONDS}
    start=$(date +%s)
    build smoke
    echo "fuzz smoke: build took $(($(date +%s) - start)) s"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for t in "${targets[@]}"; do
        mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
        echo "fuzz smoke: $t for $secs s"
        # The seeds directory comes second: libFuzzer only writes new inputs into the first one.
        if ! "$(bin smoke "$t")" -max_total_time="$secs" -rss_limit_mb="$rss_mb" -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$scratch/$t/artifacts/" \
            "$scratch/$t/corpus" "$here/seeds/$t" >"$scratch/$t/log" 2>&1; then
            tail -n 60 "$scratch/$t/log" >&2
            for f in "$scratch/$t/artifacts"/*; do
                [ -e "$f" ] && echo "fuzz smoke: $t found $(basename "$f"): $(od -An -tx1 "$f" | head -c 600)" >&2
            done
            exit 1
        fi
        grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^Done' "$scratch/$t/log" || true
    done
    echo "fuzz smoke: all targets clean in $(($(date +%s) - start)) s"
    ;;
*)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
