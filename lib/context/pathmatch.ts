/**
 * Go's `path/filepath.Match` (the matcher Docker and BuildKit use for COPY/ADD wildcard sources),
 * for POSIX paths: `*` matches any run of non-`/` characters, `?` one non-`/` character,
 * `[...]` a character class (`^` negates, `a-z` ranges), `\` escapes. No `**`, no braces, no
 * extglobs: picomatch/minimatch treat those patterns differently (e.g. `[!a]`, `{a,b}`), so a
 * glob library would hash files Docker would not copy.
 */

/** Throws on a malformed pattern (Go: ErrBadPattern). */
export function goMatchRegExp(pattern: string): RegExp {
    let re = "";
    let i = 0;
    while (i < pattern.length) {
        const c = pattern[i];
        if (c === "*") {
            re += "[^/]*";
            i++;
        } else if (c === "?") {
            re += "[^/]";
            i++;
        } else if (c === "\\") {
            if (i + 1 >= pattern.length) throw new Error(`bad pattern ${JSON.stringify(pattern)}: trailing \\`);
            re += escapeRe(pattern[i + 1]);
            i += 2;
        } else if (c === "[") {
            i++;
            let negate = false;
            if (pattern[i] === "^") {
                negate = true;
                i++;
            }
            let cls = "";
            let first = true;
            for (;;) {
                if (i >= pattern.length) throw new Error(`bad pattern ${JSON.stringify(pattern)}: unterminated [`);
                if (pattern[i] === "]" && !first) {
                    i++;
                    break;
                }
                first = false;
                let lo = pattern[i];
                if (lo === "\\") {
                    i++;
                    if (i >= pattern.length) throw new Error(`bad pattern ${JSON.stringify(pattern)}`);
                    lo = pattern[i];
                } else if (lo === "-" || lo === "]") {
                    throw new Error(`bad pattern ${JSON.stringify(pattern)}: ${lo} in class`);
                }
                i++;
                if (pattern[i] === "-" && pattern[i + 1] !== "]") {
                    i++;
                    let hi = pattern[i];
                    if (hi === "\\") {
                        i++;
                        hi = pattern[i];
                    }
                    if (hi === undefined) throw new Error(`bad pattern ${JSON.stringify(pattern)}`);
                    i++;
                    cls += `${escapeClass(lo)}-${escapeClass(hi)}`;
                } else {
                    cls += escapeClass(lo);
                }
            }
            // Go classes never match the separator.
            re += negate ? `(?!/)[^${cls}]` : `(?!/)[${cls}]`;
        } else {
            re += escapeRe(c);
            i++;
        }
    }
    return new RegExp(`^${re}$`, "s");
}

/** `filepath.Match(pattern, name)`. */
export function goMatch(pattern: string, name: string): boolean {
    return goMatchRegExp(pattern).test(name);
}

/** Whether a COPY source has wildcard characters (Docker: `*`, `?`, `[`, and `\` escapes). */
export function hasWildcard(p: string): boolean {
    return /[*?[\\]/.test(p);
}

function escapeRe(c: string): string {
    return c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function escapeClass(c: string): string {
    return c.replace(/[\\\]^-]/g, "\\$&");
}
