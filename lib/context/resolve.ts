/**
 * Build-context resolution: which context files one COPY/ADD source covers, followed and walked as
 * BuildKit does. Shared by the hashing (lib/hashing/inputs.ts), which hashes what is covered, and
 * the daemonless layer writer (lib/layer/writer.ts), which places it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContextFilter } from "./dockerignore";
import { Probes } from "./lookups";
import { hasWildcard, goMatchRegExp } from "./pathmatch";
import { byteOrder } from "../hashing/digest";

/** Docker cleans a COPY source and keeps it inside the context ("../x" is "x"). */
export function cleanSource(src: string): string {
    const norm = path.posix.normalize(`/${src.replace(/\\/g, "/")}`);
    return norm.replace(/^\/+/, "").replace(/\/+$/, "");
}

/** A finding of the resolution, as `<Dockerfile>:<line>: <text>` in the warnings. */
export interface ResolveNote {
    line: number;
    text: string;
}

/** What one COPY source covers. */
export interface Resolved {
    /** Context files (POSIX, relative) the build reads. */
    files: string[];
    /** Symlinks the build follows to a file: [link, target]; the target's content is copied under the link's name. */
    followed: [string, string][];
    /** Wildcard matches that are such links (the daemonless layer writer does not place them). */
    linkMatches: string[];
    /** Some path was reached through a symlink (the daemonless writer only places symlink-free sources). */
    linked: boolean;
    /** A wildcard's literal directory is missing or not in the context: the build fails. */
    prefixMissing: boolean;
    /** Copied directories with nothing in them (the build still creates them). */
    emptyDirs: string[];
}

/**
 * The context files one COPY source covers, as BuildKit resolves it (copy with FollowSymlinks,
 * AllowWildcard, AllowEmptyWildcard):
 *   - a named source (no wildcard) is followed, its links resolved inside the context: a link to a
 *     file copies the file's content, a directory is copied whole (links inside stay links);
 *   - a wildcard source: the literal directories before the first wildcard are followed the same
 *     way; from there on matching walks the tree without entering symlinks; every match is then
 *     followed like a named source; a wildcard may match nothing (the build copies nothing).
 * Ignored files are not in the context, so they are never covered, and a link leading into an
 * ignored path leads to nothing. Where this machine would follow a link elsewhere than Docker
 * (an absolute target, one leaving the context), OutsideContext is thrown.
 */
export async function resolveSource(contextDir: string, src: string, filter: ContextFilter, probes = new Probes(false)): Promise<Resolved> {
    const out: Resolved = { files: [], followed: [], linkMatches: [], linked: false, prefixMissing: false, emptyDirs: [] };
    const clean = cleanSource(src);
    if (clean === "") {
        // ".", "./", "/" and "" all clean to "": the whole context.
        out.files = walkDirSync(contextDir, "", filter, probes, out.emptyDirs);
        return out;
    }
    if (!hasWildcard(clean)) {
        coverFollowed(contextDir, clean, filter, probes, out, false);
        return finish(out);
    }
    const segments = clean.split("/");
    const first = segments.findIndex((s) => hasWildcard(s));
    const prefix = segments.slice(0, first).join("/");
    // The directories before the first wildcard are followed (in the context); we list them
    // through this machine's path, so it must lead to the same place. BuildKit walks from there:
    // a prefix that is missing, or not in the context, fails the build.
    let prefixReal = "";
    if (prefix !== "") {
        const real = checkResolution(contextDir, prefix, probes);
        if (real === undefined || probes.stat(path.join(contextDir, prefix))?.isDirectory() !== true || (filter.ignores(real) && !filter.hasExceptions)) {
            out.prefixMissing = true;
            return out;
        }
        prefixReal = real;
        if (real !== prefix) out.linked = true;
    }
    /** `rel`: the path as the source names it; `real`: where it is in the context (what the ignore file sees). */
    let frontier = [{ rel: prefix, real: prefixReal }];
    for (let i = first; i < segments.length; i++) {
        const seg = segments[i];
        const last = i === segments.length - 1;
        const segRe = hasWildcard(seg) ? goMatchRegExp(seg) : undefined;
        const next: typeof frontier = [];
        for (const dir of frontier) {
            if (segRe === undefined) {
                const rel = join(dir.rel, seg);
                const st = probes.lstat(path.join(contextDir, rel));
                // Matching never enters a symlink or a file; a final component may be anything.
                if (st !== undefined && (last || st.isDirectory())) next.push({ rel, real: join(dir.real, seg) });
                continue;
            }
            // Never list an ignored directory: nothing below it is in the context.
            if (dir.real !== "" && filter.ignores(dir.real) && !filter.hasExceptions) continue;
            let entries: fs.Dirent[];
            try {
                entries = probes.readdir(path.join(contextDir, dir.rel));
            } catch {
                continue;
            }
            for (const e of entries) {
                if (segRe.test(e.name) && (last || e.isDirectory())) next.push({ rel: join(dir.rel, e.name), real: join(dir.real, e.name) });
            }
        }
        frontier = next;
    }
    for (const m of frontier) coverFollowed(contextDir, m.rel, filter, probes, out, true, m.real);
    return finish(out);
}

/** Follow records in byte order: the hash must not depend on the order a directory lists its entries. */
function finish(out: Resolved): Resolved {
    out.followed = byteOrder(out.followed, ([link]) => link);
    out.linkMatches = byteOrder(out.linkMatches, (p) => p);
    out.emptyDirs = byteOrder(out.emptyDirs, (p) => p);
    return out;
}

/**
 * Covers `rel` (a named source or a wildcard match) the way the build follows it. `entryReal` is
 * where the entry itself is in the context (its parents resolved, not itself); the ignore file
 * applies to real paths, as the build context holds them. A symlink to a file is the target's
 * content; a directory (possibly reached through links) is walked where it really is and
 * reported under `rel`. A link the build would follow to nothing, or to an excluded path, fails
 * the build: OutsideContext.
 */
function coverFollowed(contextDir: string, rel: string, filter: ContextFilter, probes: Probes, out: Resolved, isMatch: boolean, entryReal?: string): void {
    const parent = path.posix.dirname(rel);
    // The parents are read through this machine's links: they must lead where the build's do.
    const parentReal = parent === "." ? "" : checkResolution(contextDir, parent, probes);
    if (parentReal === undefined) return; // nothing there: a named source is then an error
    const real = entryReal ?? join(parentReal, path.posix.basename(rel));
    if (real !== rel) out.linked = true;
    const lst = probes.lstat(path.join(contextDir, rel));
    if (lst === undefined) return;
    const isLink = lst.isSymbolicLink();
    // Not in the context: an ignored link or file; an ignored directory unless `!` re-includes below it.
    if (filter.ignores(real) && (isLink || !lst.isDirectory() || !filter.hasExceptions)) return;
    if (isLink) out.linked = true;
    const target = followedSource(contextDir, rel, probes);
    if (target !== undefined) {
        // A symlink to a file: the build copies the target's content, so the target is the input.
        if (filter.ignores(target))
            throw new OutsideContext(rel, path.join(contextDir, target), undefined, `${target}, where it leads, is excluded by the ignore file`);
        out.files.push(target);
        out.followed.push([rel, target]);
        if (isMatch) out.linkMatches.push(rel);
        return;
    }
    // Followed below through this machine's links: they must lead where Docker's would.
    const inContext = checkResolution(contextDir, rel, probes);
    const st = inContext === undefined ? undefined : probes.stat(path.join(contextDir, rel));
    if (inContext === undefined || st === undefined) {
        // A link the build follows to nothing fails it (a named source: the caller reports it).
        if (isLink && isMatch) throw new OutsideContext(rel, "nothing", undefined, "the link leads nowhere in the context");
        return;
    }
    if (isLink && filter.ignores(inContext) && (!st.isDirectory() || !filter.hasExceptions)) {
        throw new OutsideContext(rel, path.join(contextDir, inContext), undefined, `${inContext}, where it leads, is excluded by the ignore file`);
    }
    if (!st.isDirectory()) {
        out.files.push(rel);
        return;
    }
    // Walked where it really is, so the ignore file applies to the paths the build sees.
    const empty: string[] = [];
    for (const p of walkDirSync(contextDir, inContext, filter, probes, empty)) out.files.push(inContext === rel ? p : rel + p.slice(inContext.length));
    for (const p of empty) out.emptyDirs.push(inContext === rel ? p : rel + p.slice(inContext.length));
}

/**
 * When `src` names (without wildcards) a symlink whose target is a regular file, the target's
 * context-relative path; else undefined. Docker follows a symlink named directly as a COPY
 * source and copies the target as a regular file under the link's name (links found inside a
 * copied directory or through a wildcard stay links). The link is resolved inside the context,
 * as BuildKit does: an absolute target starts at the context root and `..` stops there.
 */
export function followedSource(contextDir: string, src: string, probes = new Probes(false)): string | undefined {
    const clean = cleanSource(src);
    if (clean === "" || hasWildcard(clean)) return undefined;
    if (probes.lstat(path.join(contextDir, clean))?.isSymbolicLink() !== true) return undefined;
    const target = resolveInContext(contextDir, clean, probes);
    if (target === undefined) return undefined;
    return probes.lstat(path.join(contextDir, target))?.isFile() === true ? target : undefined;
}

/** Follows every symlink in `rel`, scoped to the context root; undefined when a component is missing or links loop. */
function resolveInContext(contextDir: string, rel: string, probes: Probes): string | undefined {
    let todo = rel.split("/");
    const done: string[] = [];
    let hops = 0;
    while (todo.length > 0) {
        const part = todo[0];
        todo = todo.slice(1);
        if (part === "" || part === ".") continue;
        if (part === "..") {
            done.pop();
            continue;
        }
        const abs = path.join(contextDir, ...done, part);
        const st = probes.lstat(abs);
        if (st === undefined) return undefined;
        if (!st.isSymbolicLink()) {
            done.push(part);
            continue;
        }
        if (++hops > 255) return undefined;
        const link = fs.readlinkSync(abs);
        if (link.startsWith("/")) done.length = 0;
        todo = [...link.split("/"), ...todo];
    }
    return done.join("/");
}

/**
 * Every non-ignored file or symlink under `dirRel` (symlinks are not followed). Synchronous on
 * purpose: readdirSync walks a 20,000-file tree in a fraction of the time the promise API takes.
 * Below `filter.maxDepth` segments a directory's ignore decision holds for everything under it,
 * so deep files are not checked one by one.
 */
export function walkDirSync(contextDir: string, dirRel: string, filter: ContextFilter, probes = new Probes(false), emptyDirs?: string[]): string[] {
    const out: string[] = [];
    const depthOf = (rel: string) => (rel === "" ? 0 : rel.split("/").length);
    const walk = (rel: string, depth: number, check: boolean): void => {
        const entries = probes.readdir(rel === "" ? contextDir : path.join(contextDir, rel));
        const before = out.length;
        let dirs = 0;
        for (const e of entries) {
            const child = rel === "" ? e.name : `${rel}/${e.name}`;
            if (e.isDirectory()) {
                if (!check) {
                    walk(child, depth + 1, false);
                    dirs++;
                } else if (depth + 1 >= filter.maxDepth) {
                    // Decided once for the whole subtree.
                    if (!filter.ignores(child)) {
                        walk(child, depth + 1, false);
                        dirs++;
                    }
                } else if (!(filter.ignores(child) && !filter.hasExceptions)) {
                    walk(child, depth + 1, true);
                    dirs++;
                }
            } else if ((e.isFile() || e.isSymbolicLink()) && !(check && filter.ignores(child))) {
                out.push(child);
            }
        }
        // A directory with nothing in it is still copied (as an empty directory).
        if (emptyDirs !== undefined && out.length === before && dirs === 0 && !(check && rel !== "" && filter.ignores(rel))) emptyDirs.push(rel);
    };
    const depth = depthOf(dirRel);
    const check = filter.patterns.length > 0;
    if (check && depth >= filter.maxDepth) {
        if (!filter.ignores(dirRel)) walk(dirRel, depth, false);
    } else {
        walk(dirRel, depth, check);
    }
    return out;
}

/** A source that this machine resolves, through a symlink, differently from Docker. */
export class OutsideContext extends Error {
    constructor(
        readonly rel: string,
        readonly real: string,
        readonly inContext: string | undefined,
        /** Why Docker finds nothing there, when it is not the link's target itself. */
        readonly reason?: string,
    ) {
        super(`${rel} resolves to ${real} here, but inside the build context to ${inContext ?? "nothing"}${reason ? ` (${reason})` : ""}`);
    }
}

/**
 * Throws OutsideContext when this machine resolves `rel` (through the symlinks in it) to another
 * place than Docker does. Docker resolves links inside the context (an absolute target starts at
 * the context root, `..` stops there); this machine follows them to wherever they point. When the
 * two differ, hashing (or layering) this machine's files would be wrong. Every lookup is a probe,
 * so a snapshot is never served after a link changes which way this goes. Returns Docker's
 * resolution (undefined when it leads nowhere).
 */
function checkResolution(contextDir: string, rel: string, probes: Probes): string | undefined {
    const root = probes.realpath(contextDir);
    const real = probes.realpath(path.join(contextDir, rel));
    const inContext = resolveInContext(contextDir, rel, probes);
    if (root === undefined) return inContext;
    if (real === undefined) {
        // Missing here: fine unless Docker would find something.
        if (inContext !== undefined && probes.lstat(path.join(contextDir, inContext)) !== undefined) throw new OutsideContext(rel, "nothing", inContext);
        return inContext;
    }
    const hostRel = path.relative(root, real).split(path.sep).join("/");
    if (hostRel !== inContext) throw new OutsideContext(rel, real, inContext);
    return inContext;
}

function join(dir: string, name: string): string {
    return dir === "" ? name : `${dir}/${name}`;
}
