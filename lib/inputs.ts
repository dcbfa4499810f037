/**
 * Image inputs: what a Dockerfile build reads, and the hash over it.
 *
 *   hash = framed sha256 over: role, the Dockerfile text, the target platform, the build args
 *          (sorted), the FROM references (resolved, in order), remote ADD URLs, the base hash (app),
 *          and every context file the COPY/ADD sources and RUN bind mounts (without from=) cover
 *          after the ignore file, as
 *          (POSIX relative path, executable bit, sha256 of content), sorted by path bytes.
 *
 * Never in it: mtime, owner, other mode bits, absolute paths, the checkout location, the order
 * files were found in, the ignore file's own text.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { analyzeDockerfile, readDockerfile } from "./dockerfile";
import { loadContextFilter, type ContextFilter } from "./dockerignore";
import { byteOrder, frameDigest, type Record_ } from "./digest";
import { cacheDir, hashFiles, RACY_MS, saveCache, type FileHashOptions, type HashStats } from "./filehash";
import { Probes, reuseSnapshot, saveSnapshot, snapshotKey, snapshotsEnabled, fileSignature, type SnapshotFile } from "./snapshot";
import { goMatchRegExp, hasWildcard } from "./pathmatch";
import { inputError } from "./errors";
import type { InputFile } from "./plan";

export interface InputsResult {
    hash: string;
    files: InputFile[];
    totalBytes: number;
    warnings: string[];
    copyOnly: boolean;
}

export interface InputsArgs {
    role: "base" | "app";
    contextDir: string;
    dockerfile: string;
    buildArgs: Record<string, string>;
    platform: string;
    /** app only: the base image's hash, standing in for BASE_IMAGE. */
    baseHash?: string;
}

/** The build arg the app Dockerfile takes its FROM from. */
export const BASE_IMAGE_ARG = "BASE_IMAGE";

/** Computes the inputs and hash of one image build. */
export async function computeInputs(args: InputsArgs, opts: FileHashOptions = {}, stats?: HashStats): Promise<InputsResult> {
    const startedMs = Date.now();
    const contextDir = path.resolve(args.contextDir);
    const dockerfile = path.resolve(contextDir, args.dockerfile);
    if (!fs.existsSync(contextDir) || !fs.statSync(contextDir).isDirectory()) {
        throw inputError({ input: "build context", value: JSON.stringify(contextDir), allowed: "an existing directory", fix: "point appDir at the app's build context" });
    }
    const text = readDockerfile(dockerfile, args.role === "base" ? "base Dockerfile" : "app Dockerfile");
    const shownFile = displayPath(dockerfile);
    const hashedArgs = { ...args.buildArgs };
    const effectiveArgs = { ...args.buildArgs };
    if (args.role === "app") {
        if (args.baseHash === undefined || !/^[a-f0-9]{64}$/.test(args.baseHash)) {
            throw inputError({ input: "baseHash", value: JSON.stringify(args.baseHash), allowed: "the 64-hex hash of the base image", fix: "compute it with computeBaseInputs first" });
        }
        delete hashedArgs[BASE_IMAGE_ARG];
        effectiveArgs[BASE_IMAGE_ARG] = `thinlayer-base@sha256:${args.baseHash}`;
    }
    const analysis = analyzeDockerfile(text, shownFile, effectiveArgs);
    const warnings = [...analysis.warnings];
    let copyOnly = analysis.copyOnly;
    if (args.role === "app") {
        const first = analysis.stages[0];
        if (first.from !== effectiveArgs[BASE_IMAGE_ARG]) {
            copyOnly = false;
            warnings.push(`${shownFile}:${first.line}: the app Dockerfile does not start FROM \${${BASE_IMAGE_ARG}}, so it is not built on the base image`);
        }
    }
    const filter = loadContextFilter(contextDir, dockerfile);
    /** The result; from a snapshot, `files` is built on first use (a warm caller often needs only the hash). */
    const result = (hash: string, files: InputFile[] | (() => InputFile[]), totalBytes: number, readsGit: boolean): InputsResult => {
        if (readsGit) {
            warnings.push(`${shownFile}: the build reads .git/ from the context; its contents differ between clones, so hashes (and images) will too. Add .git to ${filter.file ? displayPath(filter.file) : ".dockerignore"}`);
        }
        const r = { hash } as InputsResult;
        if (typeof files === "function") {
            let built: InputFile[] | undefined;
            Object.defineProperty(r, "files", { enumerable: true, configurable: true, get: () => (built ??= files()) });
        } else {
            r.files = files;
        }
        return Object.assign(r, { totalBytes, warnings, copyOnly });
    };

    // A warm run: the last result for this Dockerfile, if nothing it looked at has changed.
    const useSnapshot = (opts.cache ?? true) && snapshotsEnabled(contextDir);
    const slot = `${args.role}\0${contextDir}\0${dockerfile}`;
    const key = snapshotKey([
        ["role", args.role],
        ["context", contextDir],
        ["dockerfile", dockerfile, text],
        ["platform", args.platform],
        ["base", args.baseHash ?? ""],
        ...byteOrder(Object.entries(effectiveArgs), ([k]) => k).map(([k, v]) => ["arg", k, v]),
        ["ignore", filter.file ?? "", ...filter.patterns],
    ]);
    if (useSnapshot) {
        const hit = reuseSnapshot(cacheDir(), slot, key, contextDir);
        if (hit !== undefined) {
            if (stats) {
                stats.hits += hit.count;
                stats.snapshot = true;
            }
            return result(hit.hash, hit.files, hit.totalBytes, hit.readsGit);
        }
    }

    const probes = new Probes(useSnapshot);
    const paths = new Set<string>();
    /** Explicitly named sources that are symlinks to files: [link, target] (the build copies the target's content). */
    const followed: [string, string][] = [];
    const cover = async (src: string, where: { keyword: string; line: number }) => {
        let found: string[];
        try {
            found = await resolveSource(contextDir, src, filter, probes);
        } catch (e) {
            if (e instanceof OutsideContext) throw outsideContext(where, src, e, shownFile, contextDir);
            throw e;
        }
        if (found.length === 0) throw noMatch(where, src, shownFile, contextDir, filter);
        for (const p of found) paths.add(p);
        const target = followedSource(contextDir, src, probes);
        if (target !== undefined) followed.push([cleanSource(src), target]);
    };
    for (const copy of analysis.copies) {
        for (const src of copy.sources) await cover(src, copy);
    }
    for (const bind of analysis.bindMounts) {
        await cover(bind.source, { keyword: "RUN --mount=type=bind", line: bind.line });
    }
    const sigs = new Map<string, number[]>();
    const files = await hashFiles(contextDir, byteOrder([...paths], (p) => p), useSnapshot ? { ...opts, onStat: (rel, st) => sigs.set(rel, fileSignature(st)) } : opts, stats);
    if (opts.cache ?? true) saveCache();
    const records: Record_[] = [
        ["role", args.role],
        ["dockerfile", text],
        ["platform", args.platform],
        ...byteOrder(Object.entries(hashedArgs), ([k]) => k).map(([k, v]) => ["arg", k, v]),
        ...analysis.fromRefs.map((r) => ["from", r]),
        ...analysis.remotes.map((r) => ["remote", r.url, r.checksum ?? ""]),
        ...(args.role === "app" ? [["base", args.baseHash ?? ""]] : []),
        ...files.map((f) => ["file", f.path, f.executable ? "1" : "0", f.sha256]),
        // Only present when a named source is a symlink, so other Dockerfiles keep their hashes.
        ...followed.map(([link, target]): Record_ => ["follow", link, target]),
    ];
    const hash = frameDigest("thinlayer-image-v1", records);
    const totalBytes = files.reduce((n, f) => n + f.size, 0);
    const readsGit = files.some((f) => f.path.startsWith(".git/"));
    if (useSnapshot) {
        const snapFiles = files.map((f): SnapshotFile => ({ ...f, sig: sigs.get(f.path) ?? [] }));
        saveSnapshot(cacheDir(), slot, { key, hash, probes: probes.all(), files: snapFiles, totalBytes, readsGit }, startedMs, opts.racyMs ?? RACY_MS);
    }
    return result(hash, files, totalBytes, readsGit);
}

/** Docker cleans a COPY source and keeps it inside the context ("../x" is "x"). */
export function cleanSource(src: string): string {
    const norm = path.posix.normalize(`/${src.replace(/\\/g, "/")}`);
    return norm.replace(/^\/+/, "").replace(/\/+$/, "");
}

/**
 * The context files (POSIX, relative) one COPY source covers: a file, a directory (expanded),
 * or a Go `filepath.Match` wildcard matched segment by segment. Ignored files are not in the
 * context, so they are never covered.
 */
export async function resolveSource(contextDir: string, src: string, filter: ContextFilter, probes = new Probes(false)): Promise<string[]> {
    const clean = cleanSource(src);
    if (clean === "" || clean === ".") return walkDirSync(contextDir, "", filter, probes);
    if (!hasWildcard(clean)) {
        const target = followedSource(contextDir, clean, probes);
        // A named symlink to a file: the build copies the target's content, so the target is the input.
        if (target !== undefined) return filter.ignores(clean) ? [] : [target];
        // Followed below through this machine's links: they must lead where Docker's would.
        checkResolution(contextDir, clean, probes);
        return coverPath(contextDir, clean, filter, true, probes);
    }
    const segments = clean.split("/");
    /** A path matched so far; `linked`: some component of it is a symlink, so listing it follows one. */
    let frontier: { rel: string; linked: boolean }[] = [{ rel: "", linked: false }];
    for (let i = 0; i < segments.length; i++) {
        const seg = segments[i];
        const segRe = hasWildcard(seg) ? goMatchRegExp(seg) : undefined;
        const next: typeof frontier = [];
        for (const node of frontier) {
            if (segRe === undefined) {
                const rel = join(node.rel, seg);
                next.push({ rel, linked: node.linked || probes.lstat(path.join(contextDir, rel))?.isSymbolicLink() === true });
                continue;
            }
            const abs = path.join(contextDir, node.rel);
            if (node.rel !== "") {
                // Only directories are listed, and never an ignored one: nothing below it is in the context.
                if (probes.stat(abs)?.isDirectory() !== true) continue;
                if (filter.ignores(node.rel) && !filter.hasExceptions) continue;
            }
            if (node.linked) checkResolution(contextDir, node.rel, probes);
            let entries: fs.Dirent[];
            try {
                entries = probes.readdir(abs);
            } catch {
                continue;
            }
            for (const e of entries) {
                if (segRe.test(e.name)) next.push({ rel: join(node.rel, e.name), linked: node.linked || e.isSymbolicLink() });
            }
        }
        frontier = next;
    }
    const out: string[] = [];
    const checked = new Set<string>();
    for (const { rel } of frontier) {
        // A match is not followed (a matched link stays a link), but its directory is.
        const dir = path.posix.dirname(rel);
        if (dir !== "." && !checked.has(dir)) {
            checked.add(dir);
            checkIfLinked(contextDir, dir, probes);
        }
        out.push(...coverPath(contextDir, rel, filter, false, probes));
    }
    return out;
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

function coverPath(contextDir: string, rel: string, filter: ContextFilter, follow: boolean, probes: Probes): string[] {
    const abs = path.join(contextDir, rel);
    const st = follow ? probes.stat(abs) : probes.lstat(abs);
    if (st === undefined) return [];
    if (st.isDirectory()) {
        if (filter.ignores(rel) && !filter.hasExceptions) return [];
        return walkDirSync(contextDir, rel, filter, probes);
    }
    return filter.ignores(rel) ? [] : [rel];
}

/**
 * Every non-ignored file or symlink under `dirRel` (symlinks are not followed). Synchronous on
 * purpose: readdirSync walks a 20,000-file tree in a fraction of the time the promise API takes.
 * Below `filter.maxDepth` segments a directory's ignore decision holds for everything under it,
 * so deep files are not checked one by one.
 */
export function walkDirSync(contextDir: string, dirRel: string, filter: ContextFilter, probes = new Probes(false)): string[] {
    const out: string[] = [];
    const depthOf = (rel: string) => (rel === "" ? 0 : rel.split("/").length);
    const walk = (rel: string, depth: number, check: boolean): void => {
        const entries = probes.readdir(rel === "" ? contextDir : path.join(contextDir, rel));
        for (const e of entries) {
            const child = rel === "" ? e.name : `${rel}/${e.name}`;
            if (e.isDirectory()) {
                if (!check) {
                    walk(child, depth + 1, false);
                } else if (depth + 1 >= filter.maxDepth) {
                    // Decided once for the whole subtree.
                    if (!filter.ignores(child)) walk(child, depth + 1, false);
                } else if (!(filter.ignores(child) && !filter.hasExceptions)) {
                    walk(child, depth + 1, true);
                }
            } else if ((e.isFile() || e.isSymbolicLink()) && !(check && filter.ignores(child))) {
                out.push(child);
            }
        }
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
    ) {
        super(`${rel} resolves to ${real} here, but inside the build context to ${inContext ?? "nothing"}`);
    }
}

/**
 * Throws OutsideContext when this machine resolves `rel` (through the symlinks in it) to another
 * place than Docker does. Docker resolves links inside the context (an absolute target starts at
 * the context root, `..` stops there); this machine follows them to wherever they point. When the
 * two differ, hashing (or layering) this machine's files would be wrong. Every lookup is a probe,
 * so a snapshot is never served after a link changes which way this goes.
 */
function checkResolution(contextDir: string, rel: string, probes: Probes): void {
    const root = probes.realpath(contextDir);
    const real = probes.realpath(path.join(contextDir, rel));
    const inContext = resolveInContext(contextDir, rel, probes);
    if (root === undefined) return;
    if (real === undefined) {
        // Missing here: fine unless Docker would find something.
        if (inContext !== undefined && probes.lstat(path.join(contextDir, inContext)) !== undefined) throw new OutsideContext(rel, "nothing", inContext);
        return;
    }
    const hostRel = path.relative(root, real).split(path.sep).join("/");
    if (hostRel !== inContext) throw new OutsideContext(rel, real, inContext);
}

/** checkResolution when some component of `dir` is a symlink (without one, both resolve it the same way). */
function checkIfLinked(contextDir: string, dir: string, probes: Probes): void {
    let linked = false;
    let sofar = "";
    for (const part of dir.split("/")) {
        sofar = join(sofar, part);
        if (probes.lstat(path.join(contextDir, sofar))?.isSymbolicLink() === true) {
            linked = true;
            break;
        }
    }
    if (linked) checkResolution(contextDir, dir, probes);
}

function outsideContext(where: { keyword: string; line: number }, src: string, e: OutsideContext, shownFile: string, contextDir: string) {
    const docker = e.inContext === undefined ? "to nothing" : `to ${JSON.stringify(e.inContext || ".")} in the context`;
    return inputError({
        input: `${shownFile}:${where.line}`,
        value: `${where.keyword} source ${JSON.stringify(src)}: ${e.rel} goes through a symlink that this machine follows to ${e.real}, while Docker, which resolves links inside the build context ${displayPath(contextDir)}, follows it ${docker}`,
        allowed: "sources whose symlinks resolve the same way on this machine and inside the build context (Docker resolves a link inside the context: an absolute target starts at the context root)",
        fix: "make the link relative and pointing inside the context, or copy the files into the context",
    });
}

function join(dir: string, name: string): string {
    return dir === "" ? name : `${dir}/${name}`;
}

function noMatch(copy: { keyword: string; line: number }, src: string, shownFile: string, contextDir: string, filter: ContextFilter) {
    const ignoreNote = filter.file ? ` after ${displayPath(filter.file)}` : "";
    return inputError({
        input: `${shownFile}:${copy.line}`,
        value: `${copy.keyword} source ${JSON.stringify(src)}, which matches nothing in the build context ${displayPath(contextDir)}${ignoreNote}`,
        allowed: "a path or wildcard (Go filepath.Match: * ? [..]) matching at least one file in the context",
        fix: `create the file, fix the path (it is relative to the build context, not the Dockerfile), or check the ignore file does not exclude it`,
    });
}

function displayPath(p: string): string {
    const rel = path.relative(process.cwd(), p);
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p;
}
