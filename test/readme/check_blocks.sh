#!/bin/sh
# check_blocks.sh: checks every fenced code block of README.md and
# docs/*.md, so the documentation cannot drift from the code.
#
# usage: check_blocks.sh SOURCE_DIR OUT_DIR CC CXX LIBRILL_A "LIBS" "SANITIZERS" [FILE.md...]
#   FILE.md paths are relative to SOURCE_DIR (default: README.md docs/*.md).
#   Programs named by a name= marker are left in OUT_DIR for run_examples.sh.
#
# A block is checked by its language tag (test/readme/README.md has the
# whole story):
#   c        compiled with -std=c99 -Wall -Wextra -Werror against librill.a.
#            A whole program (it has "int main") is linked and run (stdin
#            /dev/null, must exit 0 within 60 s). A fragment is compiled
#            inside a wrapper: the default one includes the usual headers and
#            puts declarations at file scope, statements inside main(); a
#            fragment that uses what it does not declare names a harness,
#            test/readme/wrap/NAME.c, in which it replaces the @FRAGMENT@ line.
#   cpp      the same in C++: -std=c++17 with rill.hpp, -std=c++20 when the
#            block or its harness uses rill/coro.hpp (rill::co).
#   sh       every "make X" names a target of the Makefile; every relative
#            path named (a word with a '/') exists in the source tree.
#   cmake    every rill::X target named is one the project defines.
#   text     skipped (output, trees, diagrams).
#   none     fails: every block says what it is.
# Markers, in "<!-- readme: ... -->" on the line before the block:
#   wrap=NAME      compile the fragment inside test/readme/wrap/NAME.c|cpp
#   run            run the program a fragment's harness makes
#   compile-only   do not run this whole program (say why in the README's
#                  comment, e.g. it listens on a fixed port until killed)
#   name=NAME      keep the program as OUT_DIR/NAME; run_examples.sh runs it
#   install        (sh, cmake) test/install/run.sh runs these lines against
#                  an installed rill
# and after a ';', a comment: <!-- readme: compile-only; listens on :7000 -->
set -u

src=$1
out=$2
cc=$3
cxx=$4
librill=$5
libs=$6
sanitize=$7
shift 7
here=$src/test/readme
tab=$(printf '\t')

if [ $# -eq 0 ]; then
  set -- README.md
  for f in "$src"/docs/*.md; do
    [ -f "$f" ] && set -- "$@" "docs/${f##*/}"
  done
fi

san=""
[ -z "$sanitize" ] || san="-fsanitize=$sanitize -fno-omit-frame-pointer -fno-sanitize-recover=all"
# -D_POSIX_C_SOURCE: the examples use read() and ssize_t, which strict C99
# leaves to POSIX.
c_flags="-std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wno-unused-parameter"
cxx_flags="-Wall -Wextra -Werror -Wno-unused-parameter"

rm -rf "$out"
mkdir -p "$out/src" || exit 1

failures=0
checked=0
skipped=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# The Makefile's targets, one a line.
make_targets=$(awk '/^[A-Za-z0-9_.-][^=\t]*:([^=]|$)/ {
  sub(/:.*/, ""); n = split($0, t, " "); for (i = 1; i <= n; i++) print t[i] }' \
  "$src/Makefile")

# wrap_source WHERE LANG BLOCK HARNESS OUT: writes the compilable source.
# #line directives make the compiler name the Markdown file's lines.
wrap_source() {
  where=$1 lang=$2 block=$3 harness=$4 result=$5
  md=${where%:*} line=${where##*:}
  first=$((line + 1))
  if [ -n "$harness" ]; then
    awk -v block="$block" -v md="$md" -v first="$first" -v harness="$harness" '
      /@FRAGMENT@/ {
        print "#line " first " \"" md "\""
        while ((getline l < block) > 0) print l
        print "#line " NR + 1 " \"" harness "\""
        next
      }
      { print }' "$harness" >"$result"
    return
  fi
  if grep -q '^int main' "$block"; then
    { echo "#line $first \"$md\""; cat "$block"; } >"$result"
    return
  fi
  # A fragment: declarations at file scope, statements inside main().
  first_code=$(grep -v '^[[:space:]]*$' "$block" | grep -v '^[[:space:]]*/[*/]' | head -n 1)
  scope=statements
  case "$first_code" in
    static\ * | struct\ * | typedef\ * | enum\ * | union\ * | extern\ * | '#'* | template* | namespace\ *)
      scope="file" ;;
    *'('*')'*'{') case "$first_code" in [A-Za-z_]*) scope="file" ;; esac ;;
  esac
  {
    if [ "$lang" = c ]; then
      printf '#include <rill.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n'
      printf '#include <string.h>\n#include <signal.h>\n#include <unistd.h>\n#include <sys/socket.h>\n'
    else
      printf '#include <rill.hpp>\n'
      case "$cxx_std" in c++20) printf '#include <rill/coro.hpp>\n' ;; esac
      printf '#include <csignal>\n#include <cstdio>\n#include <string>\n#include <string_view>\n'
      printf 'using namespace std::chrono_literals;\n'
    fi
    if [ $scope = file ]; then
      echo "#line $first \"$md\""
      cat "$block"
      printf '#line 1 "<readme wrapper>"\nint main(void) { return 0; }\n'
    else
      printf 'int main(void) {\n'
      echo "#line $first \"$md\""
      cat "$block"
      printf '#line 1 "<readme wrapper>"\n  return 0;\n}\n'
    fi
  } >"$result"
}

# run_program WHERE PROGRAM: runs it as a user would try it.
run_program() {
  timeout 60 "$2" </dev/null >"$2.out" 2>&1
  status=$?
  if [ $status -ne 0 ]; then
    fail "$1: the program exited $status (124: still running after 60 s)"
    sed 's/^/    /' "$2.out"
  fi
}

check_compiled() {
  where=$1 lang=$2 block=$3 markers=$4 base=$5
  harness="" run=no name="" compile_only=no
  # Words after a ';' are a comment (why a program is compile-only, say).
  for m in ${markers%%;*}; do
    case "$m" in
      wrap=*) harness=$here/wrap/${m#wrap=} ;;
      run) run=yes ;;
      compile-only) compile_only=yes ;;
      name=*) name=${m#name=} ;;
      *) fail "$where: unknown marker '$m'"; return ;;
    esac
  done
  if [ "$lang" = c ]; then ext=c; else ext=cpp; fi
  if [ -n "$harness" ]; then
    harness=$harness.$ext
    [ -f "$harness" ] || { fail "$where: no harness ${harness#"$src"/}"; return; }
  fi
  cxx_std=c++17
  if cat "$block" ${harness:+"$harness"} | grep -q 'rill::co\b\|rill/coro.hpp\|co_await'; then
    cxx_std=c++20
  fi
  whole=no
  if [ -z "$harness" ] && grep -q '^int main' "$block"; then whole=yes; fi
  source=$base.$ext
  program=$base
  wrap_source "$where" "$lang" "$block" "$harness" "$source"
  if [ "$lang" = c ]; then
    extra=""
    [ $whole = yes ] || extra="-Wno-unused-function"
    # shellcheck disable=SC2086
    "$cc" $c_flags $extra $san -I"$src/include" -o "$program" "$source" "$librill" $libs \
      >"$base.log" 2>&1
  else
    # shellcheck disable=SC2086
    "$cxx" -std=$cxx_std $cxx_flags -Wno-unused-function $san -I"$src/include" -o "$program" \
      "$source" "$librill" $libs >"$base.log" 2>&1
  fi
  compiled=$?
  if [ $compiled -ne 0 ]; then
    fail "$where: the $lang block does not compile (generated source: $source)"
    sed 's/^/    /' "$base.log"
    return
  fi
  checked=$((checked + 1))
  if [ -n "$name" ]; then
    cp "$program" "$out/$name"
  elif [ $whole = yes ] && [ $compile_only = no ]; then
    run_program "$where" "$program"
  elif [ $run = yes ]; then
    run_program "$where" "$program"
  fi
}

check_sh() {
  where=$1 block=$2
  # Continuation lines joined, comments dropped.
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' -e 's/^[[:space:]]*#.*//; s/[[:space:]]#.*//' "$block" >"$block.cmds"
  ok=yes
  set -f
  while IFS= read -r cmd; do
    in_make=no
    for word in $cmd; do
      case "$word" in
        make) in_make=yes; continue ;;
        '&&' | '||' | ';' | '|') in_make=no; continue ;;
      esac
      if [ $in_make = yes ]; then
        case "$word" in
          -* | *=*) ;;
          *) printf '%s\n' "$make_targets" | grep -qx "$word" ||
            { fail "$where: make $word: no such target in the Makefile"; ok=no; } ;;
        esac
        continue
      fi
      case "$word" in
        *'$'* | /* | -* | '('* | *'://'*) ;;
        */*) [ -e "$src/$word" ] || { fail "$where: $word: no such file in the source tree"; ok=no; } ;;
      esac
    done
  done <"$block.cmds"
  set +f
  [ $ok = no ] || checked=$((checked + 1))
}

check_cmake() {
  where=$1 block=$2
  ok=yes
  for target in $(grep -o 'rill::[A-Za-z0-9_]*' "$block" | sort -u); do
    grep -q "add_library($target ALIAS" "$src/CMakeLists.txt" ||
      { fail "$where: $target: the project defines no such target"; ok=no; }
  done
  [ $ok = no ] || checked=$((checked + 1))
}

for md in "$@"; do
  [ -f "$src/$md" ] || { fail "$md: no such file"; continue; }
  stem=$(printf '%s' "$md" | sed 's/\.md$//; s/[^A-Za-z0-9]/_/g')
  awk -v out="$out/src" -v stem="$stem" -f "$here/extract_blocks.awk" "$src/$md" \
    >"$out/src/$stem.manifest" || { fail "$md: cannot extract its blocks"; continue; }
  while IFS="$tab" read -r line lang markers <&3; do
    where=$md:$line
    block=$out/src/$stem-$line.block
    case "$lang" in
      c | cpp) check_compiled "$where" "$lang" "$block" "$markers" "$out/src/$stem-$line" ;;
      sh | cmake)
        for m in ${markers%%;*}; do
          [ "$m" = install ] || fail "$where: unknown marker '$m' for a $lang block"
        done
        if [ "$lang" = sh ]; then check_sh "$where" "$block"; else check_cmake "$where" "$block"; fi
        ;;
      text) skipped=$((skipped + 1)) ;;
      '') fail "$where: a block without a language tag (c, cpp, sh, cmake or text)" ;;
      UNTERMINATED) fail "$where: the block is never closed" ;;
      *) fail "$where: unknown language tag '$lang' (c, cpp, sh, cmake or text)" ;;
    esac
  done 3<"$out/src/$stem.manifest"
done

echo "$checked blocks checked, $skipped text blocks skipped, $failures failure(s)"
[ $failures -eq 0 ]
