# extract_blocks.awk: splits a Markdown file into its fenced code blocks.
#   awk -v out=DIR -v stem=NAME -f extract_blocks.awk FILE.md
# writes each block to DIR/NAME-LINE.block (LINE: the line of its opening
# fence; the block's indentation removed) and prints one manifest line per
# block: LINE <tab> LANGUAGE <tab> MARKERS. MARKERS are the words of an
# HTML comment "<!-- readme: ... -->" on the last non-blank line before the
# fence (check_blocks.sh says what they mean). An unterminated block is
# printed with the language "UNTERMINATED", so the check fails on it.
BEGIN { tab = "\t"; infence = 0; last = "" }
{
  if (!infence) {
    if ($0 ~ /^[ \t]*```/) {
      infence = 1
      start = NR
      match($0, /^[ \t]*/)
      indent = RLENGTH
      lang = substr($0, indent + 4)
      sub(/^[ \t]+/, "", lang)
      sub(/[ \t].*$/, "", lang)
      markers = ""
      if (last ~ /^[ \t]*<!--[ \t]*readme:.*-->[ \t]*$/) {
        markers = last
        sub(/^[ \t]*<!--[ \t]*readme:[ \t]*/, "", markers)
        sub(/[ \t]*-->[ \t]*$/, "", markers)
      }
      file = out "/" stem "-" start ".block"
      printf "" >file
    } else if ($0 !~ /^[ \t]*$/) {
      last = $0
    }
    next
  }
  if ($0 ~ /^[ \t]*```[ \t]*$/) {
    close(file)
    print start tab lang tab markers
    infence = 0
    last = ""
    next
  }
  line = $0
  # Remove the fence's indentation (blocks inside list items).
  for (i = 0; i < indent && substr(line, 1, 1) ~ /[ \t]/; i++)
    line = substr(line, 2)
  print line >file
}
END {
  if (infence) {
    close(file)
    print start tab "UNTERMINATED" tab markers
  }
}
