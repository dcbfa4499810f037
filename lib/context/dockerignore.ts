/**
 * Which context files a build can see: Docker's ignore-file rules, matched with
 * @balena/dockerignore (a port of Docker's own matcher: `**`, `!` re-includes, last match wins,
 * a pattern that matches a directory excludes everything below it).
 *
 * Lookup order, as BuildKit does it: `<Dockerfile>.dockerignore` next to the Dockerfile (e.g.
 * `Dockerfile.base.dockerignore`) wins over `<context>/.dockerignore`; only one file is used.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import ignore from "@balena/dockerignore";

export interface ContextFilter {
    /** The ignore file in use (absolute), or undefined when there is none. */
    file?: string;
    patterns: string[];
    /** Some pattern starts with `!`: an excluded directory may still hold included files. */
    hasExceptions: boolean;
    /**
     * Patterns are anchored at the context root and, without `**`, each can only match paths with
     * as many segments as it has. So a path deeper than `maxDepth` is decided by its prefix of
     * `maxDepth` segments: a walk can decide a whole subtree once (Infinity when some pattern has `**`).
     */
    maxDepth: number;
    /** Whether a context-relative POSIX path is excluded from the build context. */
    ignores(rel: string): boolean;
}

/** Finds the ignore file that applies to `dockerfile` built with `contextDir`. */
export function ignoreFileFor(contextDir: string, dockerfile: string): string | undefined {
    const own = `${dockerfile}.dockerignore`;
    if (fs.existsSync(own)) return own;
    const shared = path.join(contextDir, ".dockerignore");
    return fs.existsSync(shared) ? shared : undefined;
}

/** Parses ignore-file text the way Docker reads it: trimmed lines, `#` comments, blank lines skipped. */
export function parseIgnoreText(text: string): string[] {
    return text
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"));
}

/** A filter from patterns (exported for tests). */
export function filterFromPatterns(patterns: string[], file?: string): ContextFilter {
    if (patterns.length === 0) return { file, patterns, hasExceptions: false, maxDepth: 0, ignores: () => false };
    const ig = ignore().add(patterns);
    return { file, patterns, hasExceptions: patterns.some((p) => p.startsWith("!")), maxDepth: maxDepthOf(patterns), ignores: (rel) => ig.ignores(rel) };
}

/** The most path segments any pattern can match; Infinity if some pattern has `**`. */
function maxDepthOf(patterns: string[]): number {
    let max = 0;
    for (const raw of patterns) {
        const p = raw.replace(/^!/, "").trim();
        if (p.includes("**")) return Infinity;
        const segs = p.split("/").filter((x) => x !== "" && x !== ".");
        max = Math.max(max, segs.length);
    }
    return Math.max(1, max);
}

/** Loads the filter that applies to a build of `dockerfile` with `contextDir`. */
export function loadContextFilter(contextDir: string, dockerfile: string): ContextFilter {
    const file = ignoreFileFor(contextDir, dockerfile);
    if (file === undefined) return filterFromPatterns([]);
    return filterFromPatterns(parseIgnoreText(fs.readFileSync(file, "utf8")), file);
}
