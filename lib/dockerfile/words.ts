/**
 * Docker's word rules, the one copy both readers of a Dockerfile use: the analysis that decides the
 * inputs (./analyze.ts) and the daemonless recipe (lib/build/daemonless.ts). Splitting an
 * instruction's words (exec or shell form), the exec form of CMD/ENTRYPOINT, and variable
 * expansion, and which expansions are certain (what a daemonless build may do without a builder).
 */

/** A `${…}` body expansion implements: a name, optionally with `:-`, `-`, `:+` or `+` and a word. */
const BRACE_BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?$/s;

/**
 * The words of an instruction's arguments: a JSON array of strings is the exec form (no shell
 * processing); anything else is split on whitespace (shell form). Undefined for a heredoc (`<<`).
 */
export function splitWords(content: string): { words: string[]; shell: boolean } | undefined {
    const t = content.trim();
    if (t.startsWith("[")) {
        try {
            const a = JSON.parse(t) as unknown;
            if (Array.isArray(a) && a.every((x) => typeof x === "string")) return { words: a as string[], shell: false };
        } catch {
            // not JSON: shell form, as Docker does
        }
    }
    const words = t.split(/\s+/).filter((w) => w !== "");
    return words.some((w) => w.startsWith("<<")) ? undefined : { words, shell: true };
}

/** CMD/ENTRYPOINT as the image config stores them: the exec form as written, else `/bin/sh -c <text>`. */
export function execForm(content: string): string[] {
    const split = splitWords(content);
    return split !== undefined && !split.shell ? split.words : ["/bin/sh", "-c", content.trim()];
}

/**
 * Docker's word processing for the instructions we read: `$VAR`, `${VAR}`, `${VAR:-word}`,
 * `${VAR:+word}`, and (shell form) quotes and backslash escapes. Unset variables expand to "".
 */
export function expand(word: string, vars: Map<string, string>, shell = true): string {
    let out = "";
    let i = 0;
    let quote: '"' | "'" | undefined;
    while (i < word.length) {
        const c = word[i];
        if (shell && quote === undefined && (c === '"' || c === "'")) {
            quote = c;
            i++;
        } else if (shell && quote === c) {
            quote = undefined;
            i++;
        } else if (shell && quote !== "'" && c === "\\" && i + 1 < word.length) {
            out += word[i + 1];
            i += 2;
        } else if (quote !== "'" && c === "$" && i + 1 < word.length) {
            if (word[i + 1] === "{") {
                const end = word.indexOf("}", i + 2);
                if (end < 0) {
                    out += word.slice(i);
                    break;
                }
                const body = word.slice(i + 2, end);
                const m = BRACE_BODY.exec(body);
                // A body that is not a variable expression (e.g. `${}`) expands to nothing.
                if (m !== null) {
                    const val = vars.get(m[1]);
                    const op = m[2];
                    const alt = expand(m[3] ?? "", vars, false);
                    if (op === ":-") out += val === undefined || val === "" ? alt : val;
                    else if (op === "-") out += val === undefined ? alt : val;
                    else if (op === ":+") out += val === undefined || val === "" ? "" : alt;
                    else if (op === "+") out += val === undefined ? "" : alt;
                    else out += val ?? "";
                }
                i = end + 1;
            } else {
                const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(word.slice(i + 1));
                if (m === null) {
                    out += c;
                    i++;
                } else {
                    out += vars.get(m[0]) ?? "";
                    i += 1 + m[0].length;
                }
            }
        } else {
            out += c;
            i++;
        }
    }
    return out;
}

/**
 * Why `expand(word, vars)` would not be certain to give what Docker gives, or undefined when it
 * is: every variable named without a default is defined in `vars`, and every `${…}` form is one
 * `expand` implements. Conservative: an escaped or single-quoted `$NAME` counts as a reference.
 */
export function uncertainExpansion(word: string, vars: Map<string, string>): string | undefined {
    for (const m of word.matchAll(/\$(?:\{([^}]*)(\}?)|([A-Za-z_][A-Za-z0-9_]*))/g)) {
        if (m[3] !== undefined) {
            if (!vars.has(m[3])) return `$${m[3]} is defined neither by the base image's Env nor by an ARG/ENV of the Dockerfile`;
            continue;
        }
        const body = m[1];
        const form = m[2] === "" || body.includes("{") ? undefined : BRACE_BODY.exec(body);
        if (!form) return `the variable form \${${body}${m[2]} is not one a daemonless build expands`;
        if (form[2] === undefined) {
            if (!vars.has(form[1])) return `\${${form[1]}} is defined neither by the base image's Env nor by an ARG/ENV of the Dockerfile`;
        } else {
            const inner = uncertainExpansion(form[3] ?? "", vars);
            if (inner !== undefined) return inner;
        }
    }
    return undefined;
}
