#!/bin/bash
# layering.sh BUILD_DIR — fails when a lower layer calls a higher one
# (docs/design.md, "Layers and who may call whom"):
#
#   0 core     src/core      graph, errors, shapes, RNG, the thread pool, the clock
#   1 kernels  src/kernels   GEMM and other compute kernels
#   2 ops      src/ops       the ops' shape rules, forwards and backwards
#   3 library  src/nn src/io src/data src/train   (call each other freely)
#   4 tools    tools/        the command-line program
#
# A layer may call its own and lower layers only. Inside src/data the loaders
# (files csv npy idx fits image prep) never call spec.c, and files.c calls no
# other file of src/data. Checked on the object files of BUILD_DIR (the CMake
# build tree): every undefined symbol of an object is matched against the
# global symbols the other objects define. Objects whose source file no
# longer exists (left in the tree by a rename) are ignored. Function-pointer
# calls between layers are not seen: that is how a lower layer calls up
# (registered hooks, op tables).
set -u
BUILD=${1:?usage: layering.sh BUILD_DIR}
SRC=$(cd "$(dirname "$0")/.." && pwd)
NM=${NM:-nm}
command -v "$NM" >/dev/null || { echo "layering: no $NM: skipped"; exit 77; }

objs=()
while IFS= read -r o; do
    rel=${o#*/CMakeFiles/ds_objs.dir/}
    [ "$rel" = "$o" ] && rel=${o#*/CMakeFiles/deepsky_cli.dir/}
    rel=${rel%.o}
    [ -f "$SRC/$rel" ] && objs+=("$o")
done < <(find "$BUILD/CMakeFiles/ds_objs.dir/src" "$BUILD/CMakeFiles/deepsky_cli.dir/tools" -name '*.c.o' 2>/dev/null | sort)
if [ ${#objs[@]} -eq 0 ]; then
    echo "layering: no object files under $BUILD/CMakeFiles/{ds_objs,deepsky_cli}.dir (build first)"
    exit 1
fi

"$NM" -A -P "${objs[@]}" | awk -v src="$SRC" '
function relpath(f) {
    sub(/:$/, "", f)
    if (!sub(/.*\/CMakeFiles\/ds_objs\.dir\//, "", f)) sub(/.*\/CMakeFiles\/deepsky_cli\.dir\//, "", f)
    sub(/\.o$/, "", f)
    return f
}
function layer(f,   d) {
    if (f ~ /^src\/core\//) return 0
    if (f ~ /^src\/kernels\//) return 1
    if (f ~ /^src\/ops\//) return 2
    if (f ~ /^src\/(nn|io|data|train)\//) return 3
    if (f ~ /^tools\//) return 4
    return -1
}
BEGIN { split("core kernels ops library tools", name, " ") }
{
    f = relpath($1); sym = $2; t = $3
    if (!(f in seen)) {
        seen[f] = 1; nobj++
        if (layer(f) < 0) { printf "layering: %s is in no layer: add its folder to tests/layering.sh and docs/design.md\n", f; bad++ }
        else count[layer(f)]++
    }
    if (t == "U" || t == "w" || t == "v") { nu++; ufile[nu] = f; usym[nu] = sym }
    else if (t ~ /^[TDBRCVWGSi]$/) def[sym] = f
}
END {
    for (l = 0; l <= 4; l++)
        if (!count[l]) { printf "layering: no objects of layer %s found (not a full build?)\n", name[l + 1]; bad++ }
    for (i = 1; i <= nu; i++) {
        f = ufile[i]; s = usym[i]
        if (!(s in def)) continue              # the C library, zlib, CFITSIO
        g = def[s]; lf = layer(f); lg = layer(g)
        if (lf >= 0 && lg > lf) {
            printf "layering: %s (%s) calls %s, defined in %s (%s): a lower layer may not call a higher one\n", f, name[lf + 1], s, g, name[lg + 1]
            bad++
        }
        if (g == "src/data/spec.c" && f ~ /^src\/data\/(files|csv|npy|idx|fits|image|prep)\.c$/) {
            printf "layering: loader %s calls %s in src/data/spec.c (spec.c calls the loaders, not the other way; shared helpers go in files.c)\n", f, s
            bad++
        }
        if (f == "src/data/files.c" && g ~ /^src\/data\// && g != f) {
            printf "layering: src/data/files.c calls %s in %s (files.c is below every loader)\n", s, g
            bad++
        }
    }
    if (bad) { printf "layering: %d problem(s)\n", bad; exit 1 }
    printf "layering: %d objects (core %d, kernels %d, ops %d, library %d, tools %d), %d undefined references, none upward\n", nobj, count[0], count[1], count[2], count[3], count[4], nu
}'
