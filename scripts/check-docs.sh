#!/usr/bin/env bash
# Fails when the repository's files point outside the repository, so that a clone is complete:
#   1. `../shared` in any tracked file, and in Markdown files any relative path that climbs
#      above the repository root from the file's own folder (`../x` from README.md,
#      `../../x` from docs/);
#   2. a citation of DESIGN.md, TOOLCHAIN.md or STYLE.md (documents that are not in the
#      repository), or of design.md other than as docs/design.md outside docs/: the design is
#      docs/design.md, cited by section ("docs/design.md §8");
#   3. a relative link in a tracked Markdown file (README.md, docs/*.md, ...) to a file or
#      folder that is not tracked. Links inside code blocks and code spans are not links.
# Only bash, git, grep and awk; well under a second. Run by scripts/test.sh (so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

self=scripts/check-docs.sh
failures=0
fail() {
  echo "check-docs: $*" >&2
  failures=$((failures + 1))
}

# 1. Relative paths that leave the repository: `../shared` anywhere, and in Markdown files any
#    chain of ../ that starts a path and climbs more folders than the file is deep. (In code a
#    relative path often names a place at run time, such as ../lib/schedd/ from an installed
#    bin/, so code is held only to the first rule and to the citations below.)
while IFS= read -r hit; do
  fail "$hit: names ../shared, which is not in the repository"
done < <(git grep -n -I -F '../shared' -- . ":!$self" || true)
while IFS= read -r hit; do
  fail "$hit"
done < <(git grep -n -I -o -E '(^|[^A-Za-z0-9_./-])(\.\./)+(\.\.)?' -- '*.md' | awk '
  {
    file = $0; sub(/:.*/, "", file)
    rest = substr($0, length(file) + 2)
    line = rest; sub(/:.*/, "", line)
    chain = substr(rest, length(line) + 2)
    ups = gsub(/\.\./, "..", chain)
    depth = gsub(/\//, "/", file)
    sub(/^[^.]*/, "", chain)
    if (ups > depth) print file ":" line ": \"" chain "\" leads outside the repository"
  }')

# 2. Citations of documents that are not in the repository.
while IFS= read -r hit; do
  fail "$hit: cites a document outside the repository; cite docs/design.md (by section)"
done < <(git grep -n -I -E '(DESIGN|TOOLCHAIN|STYLE)\.md' -- . ":!$self" || true)
while IFS= read -r hit; do
  fail "$hit: cite the design as docs/design.md"
done < <(git grep -n -I -E '(^|[^/A-Za-z0-9_.-]|[^s]/)design\.md' -- . ':!docs/' ":!$self" || true)

# 3. Relative links in Markdown files resolve to tracked files or folders.
while IFS= read -r broken; do
  fail "$broken"
done < <(
  {
    git ls-files
    echo "--"
    git ls-files -z '*.md' | xargs -0 awk '
      FNR == 1 { fence = 0 }
      /^[ \t]*(```|~~~)/ { fence = !fence; next }
      fence { next }
      {
        line = $0
        gsub(/``[^`]*``/, "", line)
        gsub(/`[^`]*`/, "", line)
        # Reference definitions: [label]: target
        if (match(line, /^[ \t]*\[[^]]+\]:[ \t]*[^ \t]+/)) {
          def = substr(line, RSTART, RLENGTH)
          sub(/^[ \t]*\[[^]]+\]:[ \t]*/, "", def)
          print FILENAME "\t" FNR "\t" def
        }
        while (match(line, /\]\([^)]*\)/)) {
          target = substr(line, RSTART + 2, RLENGTH - 3)
          line = substr(line, RSTART + RLENGTH)
          print FILENAME "\t" FNR "\t" target
        }
      }'
  } | awk -F '\t' '
    # Normalizes "a/b/../c/./d" to "a/c/d"; returns "" with escaped = 1 when it climbs above
    # the root.
    function normalize(path,    n, parts, i, out, depth, stack) {
      escaped = 0
      n = split(path, parts, "/")
      depth = 0
      for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".") continue
        if (parts[i] == "..") {
          if (depth == 0) { escaped = 1; return "" }
          depth--
          continue
        }
        stack[++depth] = parts[i]
      }
      out = ""
      for (i = 1; i <= depth; i++) out = out (i > 1 ? "/" : "") stack[i]
      return out
    }
    !links && $0 == "--" { links = 1; next }
    !links {
      tracked[$0] = 1
      path = $0
      while (sub(/\/[^\/]*$/, "", path)) tracked[path] = 1
      next
    }
    {
      file = $1; lineno = $2; target = $3
      sub(/^[ \t]+/, "", target)
      if (target ~ /^</) { sub(/^</, "", target); sub(/>.*$/, "", target) }
      sub(/[ \t].*$/, "", target)        # a title: (path "title")
      sub(/#.*$/, "", target)            # an anchor
      sub(/\?.*$/, "", target)
      if (target == "") next             # an anchor in the same file
      if (target ~ /^[A-Za-z][A-Za-z0-9+.-]*:/) next  # http:, https:, mailto:
      where = file ":" lineno ": link \"" target "\""
      if (target ~ /^\//) { print where " is an absolute path, outside the repository"; next }
      dir = file
      if (!sub(/\/[^\/]*$/, "", dir)) dir = ""
      resolved = normalize((dir == "" ? "" : dir "/") target)
      if (escaped) { print where " leads outside the repository"; next }
      if (resolved == "" ) next          # the root itself
      if (!(resolved in tracked)) print where ": no tracked file or folder " resolved
    }'
)

if ((failures > 0)); then
  echo "check-docs: $failures problem(s)" >&2
  exit 1
fi
echo "docs: links and citations stay inside the repository"
