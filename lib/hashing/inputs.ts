/**
 * Image inputs: what a Dockerfile build reads, and the hash over it.
 *
 *   hash = framed sha256 over: role, the Dockerfile text, the target platform, the build args
 *          (sorted), the FROM references (resolved, in order), remote ADD URLs, the base hash (app),
 *          and every context file the COPY/ADD sources and RUN bind mounts (without from=) cover
 *          after the ignore file, as
 *          (POSIX relative path, executable bit, sha256 of content), sorted by path bytes;
 *          and, only when present, the links the build follows to a file (link, target) and the
 *          empty directories it copies, each sorted by path bytes.
 *
 * Never in it: mtime, owner, other mode bits, absolute paths, the checkout location, the order
 * files were found in, the ignore file's own text.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { analyzeDockerfile, readDockerfile, type DockerfileAnalysis } from "../dockerfile/analyze";
import { loadContextFilter, type ContextFilter } from "../context/dockerignore";
import { byteOrder, frameDigest, type Record_ } from "./digest";
import { cacheDir, hashFiles, RACY_MS, saveCache, type FileHashOptions, type HashStats } from "./filehash";
import { reuseSnapshot, saveSnapshot, snapshotKey, snapshotsEnabled, type SnapshotFile } from "./snapshot";
import { fileSignature, Probes } from "../context/lookups";
import { cleanSource, OutsideContext, resolveSource, type ResolveNote, type Resolved } from "../context/resolve";
import { hasWildcard } from "../context/pathmatch";
import { inputError } from "../errors";
import type { InputFile } from "../model";

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

/** One build, read: its paths, Dockerfile and analysis, and the args it is hashed and analysed with. */
interface Build {
    args: InputsArgs;
    contextDir: string;
    dockerfile: string;
    text: string;
    /** The Dockerfile as warnings name it. */
    shownFile: string;
    /** The build args in the hash (the app's BASE_IMAGE is not: the base hash stands for it). */
    hashedArgs: Record<string, string>;
    /** The build args the Dockerfile is analysed with (the app's BASE_IMAGE set to the base hash). */
    effectiveArgs: Record<string, string>;
    analysis: DockerfileAnalysis;
    filter: ContextFilter;
    warnings: string[];
    copyOnly: boolean;
}

/** What the COPY/ADD sources and bind mounts of a build cover in its context. */
interface Coverage {
    paths: Set<string>;
    /** Explicitly named sources that are symlinks to files: [link, target] (the build copies the target's content). */
    followed: [string, string][];
    /** Found while resolving: become warnings (and rule out a daemonless build); kept in the snapshot. */
    notes: ResolveNote[];
    /** Copied empty directories: they are in the image, so they are in the hash. */
    emptyDirs: Set<string>;
}

/** Computes the inputs and hash of one image build. */
export async function computeInputs(args: InputsArgs, opts: FileHashOptions = {}, stats?: HashStats): Promise<InputsResult> {
    const startedMs = Date.now();
    const build = readBuild(args);
    // A warm run: the last result for this Dockerfile, if nothing it looked at has changed.
    const useSnapshot = (opts.cache ?? true) && snapshotsEnabled(build.contextDir);
    const slot = `${args.role}\0${build.contextDir}\0${build.dockerfile}`;
    const key = snapshotKeyOf(build);
    if (useSnapshot) {
        const hit = reuseSnapshot(cacheDir(), slot, key, build.contextDir);
        if (hit !== undefined) {
            if (stats) {
                stats.hits += hit.count;
                stats.snapshot = true;
            }
            return result(build, hit.hash, hit.files, hit.totalBytes, hit.readsGit, hit.notes as ResolveNote[]);
        }
    }

    const probes = new Probes(useSnapshot);
    const covered = await coverSources(build, probes);
    const sigs = new Map<string, number[]>();
    const files = await hashFiles(
        build.contextDir,
        byteOrder([...covered.paths], (p) => p),
        useSnapshot ? { ...opts, onStat: (rel, st) => sigs.set(rel, fileSignature(st)) } : opts,
        stats,
    );
    if (opts.cache ?? true) saveCache();
    const hash = frameDigest("thinlayer-image-v1", imageRecords(build, files, covered));
    const totalBytes = files.reduce((n, f) => n + f.size, 0);
    const readsGit = files.some((f) => f.path.startsWith(".git/"));
    if (useSnapshot) {
        const snapFiles = files.map((f): SnapshotFile => ({ ...f, sig: sigs.get(f.path) ?? [] }));
        saveSnapshot(
            cacheDir(),
            slot,
            { key, hash, probes: probes.all(), files: snapFiles, totalBytes, readsGit, notes: covered.notes },
            build.contextDir,
            startedMs,
            opts.racyMs ?? RACY_MS,
        );
    }
    return result(build, hash, files, totalBytes, readsGit, covered.notes);
}

/** Reads and analyses the Dockerfile of one build (for the app, FROM the base hash). */
function readBuild(args: InputsArgs): Build {
    const contextDir = path.resolve(args.contextDir);
    const dockerfile = path.resolve(contextDir, args.dockerfile);
    if (!fs.existsSync(contextDir) || !fs.statSync(contextDir).isDirectory()) {
        throw inputError({
            input: "build context",
            value: JSON.stringify(contextDir),
            allowed: "an existing directory",
            fix: "point appDir at the app's build context",
        });
    }
    const text = readDockerfile(dockerfile, args.role === "base" ? "base Dockerfile" : "app Dockerfile");
    const shownFile = displayPath(dockerfile);
    const hashedArgs = { ...args.buildArgs };
    const effectiveArgs = { ...args.buildArgs };
    if (args.role === "app") {
        if (args.baseHash === undefined || !/^[a-f0-9]{64}$/.test(args.baseHash)) {
            throw inputError({
                input: "baseHash",
                value: JSON.stringify(args.baseHash),
                allowed: "the 64-hex hash of the base image",
                fix: "compute it with computeBaseInputs first",
            });
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
    return { args, contextDir, dockerfile, text, shownFile, hashedArgs, effectiveArgs, analysis, filter, warnings, copyOnly };
}

/** Everything a snapshot of this build must match exactly (small, so read every run). */
function snapshotKeyOf(b: Build): string {
    return snapshotKey([
        ["role", b.args.role],
        ["context", b.contextDir],
        ["dockerfile", b.dockerfile, b.text],
        ["platform", b.args.platform],
        ["base", b.args.baseHash ?? ""],
        ...byteOrder(Object.entries(b.effectiveArgs), ([k]) => k).map(([k, v]) => ["arg", k, v]),
        ["ignore", b.filter.file ?? "", ...b.filter.patterns],
    ]);
}

/**
 * The result; from a snapshot, `files` is built on first use (a warm caller often needs only the
 * hash). Each resolution note becomes a warning and rules out a daemonless build.
 */
function result(b: Build, hash: string, files: InputFile[] | (() => InputFile[]), totalBytes: number, readsGit: boolean, notes: ResolveNote[]): InputsResult {
    const warnings = [...b.warnings];
    let copyOnly = b.copyOnly;
    for (const n of notes) {
        copyOnly = false;
        warnings.push(`${b.shownFile}:${n.line}: ${n.text}`);
    }
    if (readsGit) {
        warnings.push(
            `${b.shownFile}: the build reads .git/ from the context; its contents differ between clones, so hashes (and images) will too. Add .git to ${b.filter.file ? displayPath(b.filter.file) : ".dockerignore"}`,
        );
    }
    const r = { hash } as InputsResult;
    if (typeof files === "function") {
        let built: InputFile[] | undefined;
        Object.defineProperty(r, "files", {
            enumerable: true,
            configurable: true,
            get: () => (built ??= files()),
            set: (v: InputFile[]) => {
                built = v;
            },
        });
    } else {
        r.files = files;
    }
    return Object.assign(r, { totalBytes, warnings, copyOnly });
}

/** Resolves every COPY/ADD source and bind mount of the build in its context. */
async function coverSources(b: Build, probes: Probes): Promise<Coverage> {
    const out: Coverage = { paths: new Set(), followed: [], notes: [], emptyDirs: new Set() };
    const app = b.args.role === "app";
    for (const copy of b.analysis.copies) {
        if (app && copy.sources.some((x) => hasWildcard(cleanSource(x))) && !copy.dest.endsWith("/")) {
            // One match and no trailing slash: the destination is a file; several: the build fails.
            out.notes.push({
                line: copy.line,
                text: `${copy.keyword} with a wildcard source and a destination without a trailing slash (${copy.dest}): whether it is a file or a directory depends on the matches, so a builder builds this image`,
            });
        }
        let any = false;
        for (const src of copy.sources) any = (await coverOne(b, probes, out, src, copy)) || any;
        if (!any) {
            // Only wildcards, none matching: the build copies nothing; whether it still creates the
            // destination is the builder's business, so the builder builds this one.
            out.notes.push({
                line: copy.line,
                text: `${copy.keyword} ${copy.sources.join(" ")} matches nothing (allowed for wildcards: nothing is copied), so a builder builds this image`,
            });
        }
    }
    for (const bind of b.analysis.bindMounts) {
        await coverOne(b, probes, out, bind.source, { keyword: "RUN --mount=type=bind", line: bind.line });
    }
    return out;
}

/** Adds what one source covers to `out`; whether it matched anything (a wildcard may match nothing, as in the build). */
async function coverOne(b: Build, probes: Probes, out: Coverage, src: string, where: { keyword: string; line: number }): Promise<boolean> {
    let found: Resolved;
    try {
        found = await resolveSource(b.contextDir, src, b.filter, probes);
    } catch (e) {
        if (e instanceof OutsideContext) throw outsideContext(where, src, e, b.shownFile, b.contextDir);
        throw e;
    }
    if (found.prefixMissing || (found.files.length === 0 && found.emptyDirs.length === 0 && !hasWildcard(cleanSource(src)))) {
        throw noMatch(where, src, b.shownFile, b.contextDir, b.filter);
    }
    for (const p of found.files) out.paths.add(p);
    for (const d of found.emptyDirs) out.emptyDirs.add(d);
    const app = b.args.role === "app";
    if (found.emptyDirs.length > 0 && app) {
        const some =
            found.emptyDirs
                .slice(0, 3)
                .map((d) => d || ".")
                .join(", ") + (found.emptyDirs.length > 3 ? ", ..." : "");
        out.notes.push({
            line: where.line,
            text: `${where.keyword} ${src} copies empty directories (${some}), which the daemonless writer does not place, so a builder builds this image`,
        });
    }
    out.followed.push(...found.followed);
    if (found.linkMatches.length > 0 && app) {
        const some = found.linkMatches.slice(0, 3).join(", ") + (found.linkMatches.length > 3 ? ", ..." : "");
        out.notes.push({
            line: where.line,
            text: `${where.keyword} ${src} matches symlinks (${some}); the build copies what they lead to, so a builder builds this image`,
        });
    } else if (found.linked && app) {
        out.notes.push({
            line: where.line,
            text: `${where.keyword} ${src} goes through a symlink, which the daemonless writer does not follow, so a builder builds this image`,
        });
    }
    return found.files.length > 0 || found.emptyDirs.length > 0;
}

/** The records the image hash is the framed digest of (docs/hashing.md). */
function imageRecords(b: Build, files: InputFile[], covered: Coverage): Record_[] {
    const { args } = b;
    return [
        ["role", args.role],
        ["dockerfile", b.text],
        ["platform", args.platform],
        ...byteOrder(Object.entries(b.hashedArgs), ([k]) => k).map(([k, v]): Record_ => ["arg", k, v]),
        ...b.analysis.fromRefs.map((r): Record_ => ["from", r]),
        ...b.analysis.remotes.map((r): Record_ => ["remote", r.url, r.checksum ?? ""]),
        ...(args.role === "app" ? [["base", args.baseHash ?? ""] as Record_] : []),
        ...files.map((f): Record_ => ["file", f.path, f.executable ? "1" : "0", f.sha256]),
        // Only present when a named source is a symlink, so other Dockerfiles keep their hashes.
        ...byteOrder(covered.followed, ([link]) => link).map(([link, target]): Record_ => ["follow", link, target]),
        // Only present when an empty directory is copied, so other Dockerfiles keep their hashes.
        ...byteOrder([...covered.emptyDirs], (d) => d).map((d): Record_ => ["emptydir", d]),
    ];
}

function outsideContext(where: { keyword: string; line: number }, src: string, e: OutsideContext, shownFile: string, contextDir: string) {
    const docker = (e.inContext === undefined ? "to nothing" : `to ${JSON.stringify(e.inContext || ".")} in the context`) + (e.reason ? ` (${e.reason})` : "");
    return inputError({
        input: `${shownFile}:${where.line}`,
        value: `${where.keyword} source ${JSON.stringify(src)}: ${e.rel} goes through a symlink that this machine follows to ${e.real}, while Docker, which resolves links inside the build context ${displayPath(contextDir)}, follows it ${docker}`,
        allowed:
            "sources whose symlinks resolve the same way on this machine and inside the build context (Docker resolves a link inside the context: an absolute target starts at the context root)",
        fix: e.reason?.includes("ignore file")
            ? "remove that path's exclusion from the ignore file, or do not copy the link"
            : "make the link relative and pointing inside the context, or copy the files into the context",
    });
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
