// Glob matching for model names and CEL's glob(): `*` = any run of characters, `?` = one character,
// `\` escapes the next character. Linear-memory two-pointer algorithm, O(n·m) worst case, so a
// policy-authored pattern cannot blow up on a long request-controlled string (unlike a RegExp
// built from the glob, which backtracks).

export function globMatch(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starP = -1; // pattern index just after the last `*`
  let starT = 0; // text index that `*` is currently assumed to reach
  while (t < text.length) {
    if (p < pattern.length) {
      const c = pattern[p];
      if (c === '*') {
        starP = ++p;
        starT = t;
        continue;
      }
      if (c === '\\' && p + 1 < pattern.length) {
        if (pattern[p + 1] === text[t]) {
          p += 2;
          t++;
          continue;
        }
      } else if (c === '?' || c === text[t]) {
        p++;
        t++;
        continue;
      }
    }
    if (starP >= 0) {
      p = starP;
      t = ++starT;
      continue;
    }
    return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** True when `pattern` contains no wildcard (so a plain comparison is enough). */
export function isLiteralGlob(pattern: string): boolean {
  return !/[*?\\]/.test(pattern);
}
