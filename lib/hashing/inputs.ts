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
import { analyzeDockerfile, readDockerfile } from "../dockerfile/analyze";
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
    const result = (hash: string, files: InputFile[] | (() => InputFile[]), totalBytes: number, readsGit: boolean, notes: ResolveNote[]): InputsResult => {
        for (const n of notes) {
            // Each note means the daemonless writer cannot reproduce the build exactly.
            copyOnly = false;
            warnings.push(`${shownFile}:${n.line}: ${n.text}`);
        }
        if (readsGit) {
            warnings.push(`${shownFile}: the build reads .git/ from the context; its contents differ between clones, so hashes (and images) will too. Add .git to ${filter.file ? displayPath(filter.file) : ".dockerignore"}`);
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
            return result(hit.hash, hit.files, hit.totalBytes, hit.readsGit, hit.notes as ResolveNote[]);
        }
    }

    const probes = new Probes(useSnapshot);
    const paths = new Set<string>();
    /** Explicitly named sources that are symlinks to files: [link, target] (the build copies the target's content). */
    const followed: [string, string][] = [];
    /** Found while resolving: become warnings (and rule out a daemonless build); kept in the snapshot. */
    const notes: ResolveNote[] = [];
    /** Copied empty directories: they are in the image, so they are in the hash. */
    const emptyDirs = new Set<string>();
    /** Whether the source matched anything (a wildcard may match nothing, as in the build). */
    const cover = async (src: string, where: { keyword: string; line: number }): Promise<boolean> => {
        let found: Resolved;
        try {
            found = await resolveSource(contextDir, src, filter, probes);
        } catch (e) {
            if (e instanceof OutsideContext) throw outsideContext(where, src, e, shownFile, contextDir);
            throw e;
        }
        if (found.prefixMissing || (found.files.length === 0 && found.emptyDirs.length === 0 && !hasWildcard(cleanSource(src)))) {
            throw noMatch(where, src, shownFile, contextDir, filter);
        }
        for (const p of found.files) paths.add(p);
        for (const d of found.emptyDirs) emptyDirs.add(d);
        if (found.emptyDirs.length > 0 && args.role === "app") {
            const some = found.emptyDirs.slice(0, 3).map((d) => d || ".").join(", ") + (found.emptyDirs.length > 3 ? ", ..." : "");
            notes.push({ line: where.line, text: `${where.keyword} ${src} copies empty directories (${some}), which the daemonless writer does not place, so a builder builds this image` });
        }
        followed.push(...found.followed);
        if (found.linkMatches.length > 0 && args.role === "app") {
            const some = found.linkMatches.slice(0, 3).join(", ") + (found.linkMatches.length > 3 ? ", ..." : "");
            notes.push({ line: where.line, text: `${where.keyword} ${src} matches symlinks (${some}); the build copies what they lead to, so a builder builds this image` });
        } else if (found.linked && args.role === "app") {
            notes.push({ line: where.line, text: `${where.keyword} ${src} goes through a symlink, which the daemonless writer does not follow, so a builder builds this image` });
        }
        return found.files.length > 0 || found.emptyDirs.length > 0;
    };
    for (const copy of analysis.copies) {
        if (args.role === "app" && copy.sources.some((x) => hasWildcard(cleanSource(x))) && !copy.dest.endsWith("/")) {
            // One match and no trailing slash: the destination is a file; several: the build fails.
            notes.push({ line: copy.line, text: `${copy.keyword} with a wildcard source and a destination without a trailing slash (${copy.dest}): whether it is a file or a directory depends on the matches, so a builder builds this image` });
        }
        let any = false;
        for (const src of copy.sources) any = (await cover(src, copy)) || any;
        if (!any) {
            // Only wildcards, none matching: the build copies nothing; whether it still creates the
            // destination is the builder's business, so the builder builds this one.
            notes.push({ line: copy.line, text: `${copy.keyword} ${copy.sources.join(" ")} matches nothing (allowed for wildcards: nothing is copied), so a builder builds this image` });
        }
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
        ...byteOrder(followed, ([link]) => link).map(([link, target]): Record_ => ["follow", link, target]),
        // Only present when an empty directory is copied, so other Dockerfiles keep their hashes.
        ...byteOrder([...emptyDirs], (d) => d).map((d): Record_ => ["emptydir", d]),
    ];
    const hash = frameDigest("thinlayer-image-v1", records);
    const totalBytes = files.reduce((n, f) => n + f.size, 0);
    const readsGit = files.some((f) => f.path.startsWith(".git/"));
    if (useSnapshot) {
        const snapFiles = files.map((f): SnapshotFile => ({ ...f, sig: sigs.get(f.path) ?? [] }));
        saveSnapshot(cacheDir(), slot, { key, hash, probes: probes.all(), files: snapFiles, totalBytes, readsGit, notes }, contextDir, startedMs, opts.racyMs ?? RACY_MS);
    }
    return result(hash, files, totalBytes, readsGit, notes);
}

function outsideContext(where: { keyword: string; line: number }, src: string, e: OutsideContext, shownFile: string, contextDir: string) {
    const docker = (e.inContext === undefined ? "to nothing" : `to ${JSON.stringify(e.inContext || ".")} in the context`) + (e.reason ? ` (${e.reason})` : "");
    return inputError({
        input: `${shownFile}:${where.line}`,
        value: `${where.keyword} source ${JSON.stringify(src)}: ${e.rel} goes through a symlink that this machine follows to ${e.real}, while Docker, which resolves links inside the build context ${displayPath(contextDir)}, follows it ${docker}`,
        allowed: "sources whose symlinks resolve the same way on this machine and inside the build context (Docker resolves a link inside the context: an absolute target starts at the context root)",
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
