/**
 * The daemonless app build (the "docker patch" idea, copying changed files onto a fixed base as one new layer, done reproducibly): read the base manifest
 * and config from the registry (never its layer blobs), write one layer of the COPYed files,
 * update the config as the Dockerfile's metadata instructions say, upload only missing blobs
 * (mounting base layers from the base repository), and put the manifest last.
 *
 * A multi-platform base (an index) gets the same layer appended to every platform, and an index.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { analyzeDockerfile, readDockerfile } from "../dockerfile/analyze";
import { execForm, expand, splitWords, uncertainExpansion } from "../dockerfile/words";
import { appLayerReuse, copyEntries, layerEpoch, NotDaemonlessError, PlacedCopy, writeLayer, type LayerBlob } from "../layer/writer";
import { BASE_IMAGE_ARG } from "../hashing/inputs";
import type { InputFile } from "../model";
import { sha256 } from "../hashing/digest";
import { cacheDir } from "../hashing/filehash";
import { MountDeclinedError, RegistryClient, RegistryError, type BlobSource, type BlobStream, type FetchedManifest, type OpenUpload, type UploadResult } from "../oci/client";
import { isIndex, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest } from "../oci/mediatypes";
import { appendLayer, replaceManifests, serialize, type ManifestBlob } from "../oci/mutate";
import type { Laps } from "../format";

/** Input size up to which the app layer is built in memory. */
export const IN_MEMORY_LAYER_BYTES = 128 * 1024 * 1024;

/** What the app Dockerfile does to the base image config, plus where its COPYs go. */
export interface AppRecipe {
    copies: PlacedCopy[];
    /** Applies the metadata instructions to a copy of a base config. */
    apply(base: ImageConfig, diffId: string): ImageConfig;
}

type Scope = Map<string, string>;

function envMap(env: string[] | undefined): Scope {
    const m: Scope = new Map();
    for (const kv of env ?? []) {
        const i = kv.indexOf("=");
        if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return m;
}

/** `expand`, but only when the result is certain (uncertainExpansion); else NotDaemonlessError, so a builder, which knows Docker's full semantics, does the build instead of a daemonless guess. */
function exactExpand(word: string, vars: Scope, where: string, shell = true): string {
    const why = uncertainExpansion(word, vars);
    if (why !== undefined) throw new NotDaemonlessError(`${where}: ${why}`);
    return expand(word, vars, shell);
}

type ConfigBody = NonNullable<ImageConfig["config"]>;
/** One metadata instruction's change to the image config. */
type Step = (cfg: ConfigBody) => void;
type Props = Array<{ getName(): string; getValue(): string | null }>;

/** What the instructions read so far leave for the next one. */
interface RecipeState {
    /** Variables `$VAR` expands with: the base image's Env, then the Dockerfile's ENV. */
    scope: Scope;
    /** In-stage ARG values. */
    args: Scope;
    /** ARGs declared before FROM: their values, for an in-stage `ARG NAME` without a default. */
    globals: Scope;
    workdir: string;
    seenFrom: boolean;
    /** Whether this Dockerfile has set CMD so far (an ENTRYPOINT then keeps it). */
    cmdSet: boolean;
}

/**
 * Reads the app Dockerfile's instructions into a recipe, starting from the base image's config:
 * its WorkingDir (relative COPY destinations and WORKDIRs resolve against it) and its Env (`$VAR`
 * expands with it, then the Dockerfile's ARG/ENV). Throws NotDaemonlessError for anything a
 * registry-only build cannot reproduce exactly (lib/hashing/inputs.ts's analysis decides copy-only; this double-checks).
 */
export function appRecipe(text: string, file: string, buildArgs: Record<string, string>, baseEnv: string[] | undefined, baseWorkingDir?: string): AppRecipe {
    const analysis = analyzeDockerfile(text, file, buildArgs);
    if (!analysis.copyOnly) throw new NotDaemonlessError(`not copy-only: ${analysis.notCopyOnly.join("; ")}`);
    const copiesByLine = new Map(analysis.copies.map((c) => [c.line, c]));
    // Docker: an empty WorkingDir means "/" (so `||`, not `??`).
    const st: RecipeState = { scope: envMap(baseEnv), args: new Map(), globals: new Map(), workdir: baseWorkingDir || "/", seenFrom: false, cmdSet: false };
    if (!st.workdir.startsWith("/")) throw new NotDaemonlessError(`the base image's WorkingDir ${JSON.stringify(st.workdir)} is not absolute`);
    const steps: Step[] = [];
    const createdBy: string[] = [];
    const copies: PlacedCopy[] = [];
    for (const ins of DockerfileParser.parse(text).getInstructions()) {
        const kw = ins.getKeyword();
        const line = ins.getRange().start.line + 1;
        const where = `${file}:${line}`;
        const content = ins.getArgumentsContent() ?? "";
        const x = (word: string, shell = true): string => exactExpand(word, new Map([...st.args, ...st.scope]), where, shell);
        if (kw === "FROM") {
            st.seenFrom = true;
        } else if (kw === "ARG") {
            readArgs(ins.getArguments().map((w) => w.getValue()), buildArgs, st, where, x);
        } else if (kw === "COPY") {
            const c = copiesByLine.get(line);
            const w = splitWords(content);
            if (!c || !w) throw new NotDaemonlessError(`${where}: this form of COPY (heredoc, or no context source) needs a builder`);
            // The analysis expanded the words without the base image's Env; expand them with it.
            const words = w.words.map((word) => x(word, w.shell));
            const sources = words.slice(0, -1);
            if (JSON.stringify(sources) !== JSON.stringify(c.sources)) {
                throw new NotDaemonlessError(`${where}: COPY sources ${JSON.stringify(sources)} (with the base image's Env) differ from the ${JSON.stringify(c.sources)} the inputs were hashed with`);
            }
            copies.push({ ...c, dest: words[words.length - 1], workdir: st.workdir });
            createdBy.push(`COPY ${content}`.trim());
        } else {
            createdBy.push(`${kw} ${content}`.trim());
            steps.push(metadataStep(kw, ins, content, st, x, `${file}:${line}`));
        }
    }
    return { copies, apply: applyTo(steps, createdBy) };
}

/** ARG: before FROM a global (its value for later in-stage ARGs), after it an in-stage variable; a build arg wins. */
function readArgs(words: string[], buildArgs: Record<string, string>, st: RecipeState, where: string, x: (word: string) => string): void {
    for (const a of words) {
        const eq = a.indexOf("=");
        const name = eq < 0 ? a : a.slice(0, eq);
        if (!st.seenFrom) {
            const v = buildArgs[name] ?? (eq < 0 ? undefined : exactExpand(a.slice(eq + 1), st.globals, where));
            if (v !== undefined) st.globals.set(name, v);
            continue;
        }
        const v = buildArgs[name] ?? (eq < 0 ? st.globals.get(name) : x(a.slice(eq + 1)));
        if (v !== undefined) st.args.set(name, v);
    }
}

/** The config change of one metadata instruction (updating what later instructions see); NotDaemonlessError for any other. */
function metadataStep(kw: string, ins: Instruction, content: string, st: RecipeState, x: (word: string, shell?: boolean) => string, where: string): Step {
    const props = (): Props => (ins as unknown as { getProperties(): Props }).getProperties();
    switch (kw) {
        case "ENV": {
            const set: Array<[string, string]> = props().map((p) => [p.getName(), x(p.getValue() ?? "")]);
            for (const [k, v] of set) st.scope.set(k, v);
            return (cfg) => {
                const m = envMap(cfg.Env);
                for (const [k, v] of set) m.set(k, v);
                cfg.Env = [...m].map(([k, v]) => `${k}=${v}`);
            };
        }
        case "WORKDIR": {
            st.workdir = path.posix.resolve(st.workdir, x(content.trim()));
            const wd = st.workdir;
            return (cfg) => {
                cfg.WorkingDir = wd;
            };
        }
        case "USER": {
            const u = x(content.trim());
            return (cfg) => {
                cfg.User = u;
            };
        }
        case "EXPOSE": {
            const ports = ins.getArguments().map((a) => x(a.getValue())).map((p) => (p.includes("/") ? p.toLowerCase() : `${p}/tcp`));
            return (cfg) => {
                cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) };
                for (const p of ports) cfg.ExposedPorts[p] = {};
            };
        }
        case "LABEL": {
            const set = props().map((p) => [x(p.getName()), x(p.getValue() ?? "")] as const);
            return (cfg) => {
                cfg.Labels = { ...(cfg.Labels ?? {}) };
                for (const [k, v] of set) cfg.Labels[k] = v;
            };
        }
        case "CMD": {
            const cmd = execForm(content);
            st.cmdSet = true;
            return (cfg) => {
                cfg.Cmd = cmd;
            };
        }
        case "ENTRYPOINT": {
            const ep = execForm(content);
            // Docker (BuildKit's `if !d.cmdSet`): a new ENTRYPOINT clears the CMD only when it
            // was inherited from the base; a CMD set earlier in this Dockerfile stays.
            const clearCmd = !st.cmdSet;
            return (cfg) => {
                cfg.Entrypoint = ep;
                if (clearCmd) cfg.Cmd = null;
            };
        }
        case "STOPSIGNAL": {
            const sig = x(content.trim());
            return (cfg) => {
                cfg.StopSignal = sig;
            };
        }
        default:
            throw new NotDaemonlessError(`${where}: ${kw} needs a builder`);
    }
}

/** The recipe's `apply`: the steps on a copy of the base config, plus the new layer's diff id and history entry. */
function applyTo(steps: Step[], createdBy: string[]): AppRecipe["apply"] {
    const created = new Date(layerEpoch() * 1000).toISOString().replace(".000Z", "Z");
    return (base, diffId) => {
        const cfg = JSON.parse(JSON.stringify(base)) as ImageConfig;
        cfg.config = cfg.config ?? {};
        for (const s of steps) s(cfg.config);
        cfg.created = created;
        cfg.rootfs = { type: "layers", diff_ids: [...(base.rootfs?.diff_ids ?? []), diffId] };
        cfg.history = [...(base.history ?? []), { created, created_by: `thinlayer: ${createdBy.join(" ; ")}`, comment: "thinlayer daemonless layer" }];
        return cfg;
    };
}

/** Everything a daemonless push sends, in order: blobs, then child manifests, then the tagged top. */
export interface PreparedImage {
    layer: LayerBlob;
    /** Base layers the target repository must hold (mounted, never downloaded). */
    baseLayers: Descriptor[];
    /** New blobs: the layer and each platform's config. */
    blobs: BlobSource[];
    /** Platform manifests put by digest before the index (empty for a single-platform image). */
    children: ManifestBlob[];
    top: ManifestBlob;
    bytesDownloaded: number;
    /** E.g. a single-platform base whose platform is not the one asked for. */
    warnings: string[];
}

/** The base image as the registry has it: the manifest (or index) by digest, and each platform's manifest and config. */
export interface BaseImage {
    top: FetchedManifest;
    targets: Array<{ desc?: Descriptor; manifest: ImageManifest; manifestMediaType: string }>;
    configs: ImageConfig[];
    /** Read from this machine's copy (baseFromCache), not the registry: that the registry still has it is checked by `confirmBase`. */
    fromCache?: boolean;
}

/**
 * Reads the base image's manifest and configs (never a layer blob), and keeps a copy of them by
 * digest for the next run (baseFromCache). A missing base is an error that says which (the
 * repository, or the digest in it) and how to fix it.
 */
export async function readBase(client: RegistryClient, baseRepository: string, baseDigest: string): Promise<BaseImage> {
    const top = await client.getManifest(baseRepository, baseDigest).catch(async (e: unknown) => {
        if (!(e instanceof RegistryError) || e.code !== "MANIFEST_UNKNOWN") throw e;
        throw await missingBase(client, baseRepository, baseDigest);
    });
    const images = imagesOf(top);
    const manifests = images ? await Promise.all(images.map((d) => client.getManifest(baseRepository, d.digest))) : [top];
    const configs = await Promise.all(manifests.map((m) => client.getBlob(baseRepository, configDigestOf(m))));
    keepBase([top, ...(images ? manifests : [])], configs);
    return assembleBase(top, images, manifests, configs);
}

/** Whether the registry has the base (read from this machine's copy); throws readBase's error when it does not. */
export async function confirmBase(client: RegistryClient, baseRepository: string, baseDigest: string): Promise<void> {
    if ((await client.headManifest(baseRepository, baseDigest)) === undefined) throw await missingBase(client, baseRepository, baseDigest);
}

/** The error for a base image the registry does not have: its repository, or the digest in it. */
async function missingBase(client: RegistryClient, baseRepository: string, baseDigest: string): Promise<RegistryError> {
    const where = `${client.host}/${baseRepository}`;
    if (!(await client.repositoryExists(baseRepository))) {
        return new RegistryError(`base image ${where}@${baseDigest}: repository ${where} does not exist (NAME_UNKNOWN). Fix: create the repository and run \`thinlayer ensure base\` first, or correct --base-ref.`, "NAME_UNKNOWN", 404);
    }
    return new RegistryError(`base image ${where}@${baseDigest} is not in the registry (MANIFEST_UNKNOWN). Fix: run \`thinlayer ensure base\` first and pass the ref it prints as --base-ref.`, "MANIFEST_UNKNOWN", 404);
}

/** An index's image manifests (its attestation manifests are not images); undefined for a single manifest. */
function imagesOf(top: FetchedManifest): Descriptor[] | undefined {
    if (!isIndex(top.mediaType)) return undefined;
    return (JSON.parse(top.bytes.toString("utf8")) as ImageIndex).manifests.filter((d) => d.platform?.os !== "unknown");
}

function configDigestOf(m: FetchedManifest): string {
    return (JSON.parse(m.bytes.toString("utf8")) as ImageManifest).config.digest;
}

/** The base from its top manifest, its image manifests (one per entry of `images`, or the top one) and their configs. */
function assembleBase(top: FetchedManifest, images: Descriptor[] | undefined, manifests: FetchedManifest[], configs: Buffer[]): BaseImage {
    return {
        top,
        targets: manifests.map((m, i) => ({ desc: images?.[i], manifest: JSON.parse(m.bytes.toString("utf8")) as ImageManifest, manifestMediaType: m.mediaType })),
        configs: configs.map((c) => JSON.parse(c.toString("utf8")) as ImageConfig),
    };
}

/*
 * This machine's copy of base manifests and configs, by digest. A base ref is a digest, so what it
 * names never changes, and every read is checked against that digest (a damaged or altered file is
 * a miss). An app build then writes its layer without first waiting on the two or three round
 * trips of reading the base (~20-25 ms through the benchmark's proxy); whether the registry still
 * has the base is asked meanwhile (confirmBase), before anything is tagged.
 */
const BASE_CACHE_KEEP = 512; // files (a base is two or three); the oldest go first

function baseCacheDir(): string {
    return path.join(cacheDir(), "base-images");
}

function cachedFile(digest: string): Buffer | undefined {
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return undefined;
    try {
        const b = fs.readFileSync(path.join(baseCacheDir(), digest.slice(7)));
        return sha256(b) === digest ? b : undefined;
    } catch {
        return undefined;
    }
}

/** A manifest is kept as its bytes, and its media type (the registry's Content-Type) beside it. */
function cachedManifest(digest: string): FetchedManifest | undefined {
    const bytes = cachedFile(digest);
    if (bytes === undefined) return undefined;
    try {
        // As getManifest reads it: the manifest's own mediaType field, else the registry's Content-Type.
        const mediaType = (JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType || fs.readFileSync(path.join(baseCacheDir(), `${digest.slice(7)}.type`), "utf8");
        return mediaType === "" ? undefined : { digest, mediaType, size: bytes.length, bytes };
    } catch {
        return undefined;
    }
}

/** The base from this machine's copy (read by an earlier readBase), or undefined when any part is missing or damaged. Never throws. */
export function baseFromCache(baseDigest: string): BaseImage | undefined {
    try {
        const top = cachedManifest(baseDigest);
        if (top === undefined) return undefined;
        const images = imagesOf(top);
        const manifests = images ? images.map((d) => cachedManifest(d.digest)) : [top];
        if (manifests.some((m) => m === undefined)) return undefined;
        const configs = (manifests as FetchedManifest[]).map((m) => cachedFile(configDigestOf(m)));
        if (configs.some((c) => c === undefined)) return undefined;
        return { ...assembleBase(top, images, manifests as FetchedManifest[], configs as Buffer[]), fromCache: true };
    } catch {
        return undefined;
    }
}

/** Keeps the base's manifests and configs for baseFromCache (each file by rename: a reader sees all of it or none). Best effort. */
function keepBase(manifests: FetchedManifest[], configs: Buffer[]): void {
    const dir = baseCacheDir();
    const put = (name: string, bytes: Buffer | string) => {
        const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
        fs.writeFileSync(tmp, bytes, { mode: 0o600 });
        fs.renameSync(tmp, path.join(dir, name));
    };
    try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        // The type before the bytes: a manifest is found only once both are there.
        for (const m of manifests) {
            put(`${m.digest.slice(7)}.type`, m.mediaType);
            put(m.digest.slice(7), m.bytes);
        }
        for (const c of configs) put(sha256(c).slice(7), c);
        const files = fs.readdirSync(dir);
        if (files.length > BASE_CACHE_KEEP) {
            const aged = files.map((f) => ({ f, t: fs.statSync(path.join(dir, f)).mtimeMs })).sort((x, y) => x.t - y.t);
            for (const { f } of aged.slice(0, files.length - BASE_CACHE_KEEP)) fs.rmSync(path.join(dir, f), { force: true });
        }
    } catch {
        // A cache: the next run reads the registry again.
    }
}

/** The base image's layers, each once (the target repository must hold them all). */
export function baseLayersOf(base: BaseImage): Descriptor[] {
    const out: Descriptor[] = [];
    for (const t of base.targets) for (const l of t.manifest.layers) if (!out.some((b) => b.digest === l.digest)) out.push(l);
    return out;
}

/**
 * Writes the layer into `workDir` (or memory) on the base (read by readBase, or here when not
 * given), and computes every blob and manifest. Uploads nothing.
 */
export async function prepareApp(a: {
    client: RegistryClient;
    baseRepository: string;
    baseDigest: string;
    contextDir: string;
    dockerfile: string;
    buildArgs: Record<string, string>;
    files: readonly InputFile[];
    platform: string;
    workDir: string;
    baseImageArg: string;
    /** `host/repo` of the base, for the OCI base.name annotation. */
    baseName: string;
    /** The base, when the caller started reading it earlier. */
    base?: Promise<BaseImage>;
    /** Receives the layer blob's bytes in order as they are written (writeLayer's onData). */
    onLayerData?: (b: Buffer) => void;
    /** Times the base reads ("base") and the layer ("layer"). */
    laps?: Laps;
}): Promise<PreparedImage> {
    const before = a.client.stats.bytesDownloaded;
    const text = readDockerfile(a.dockerfile, "app Dockerfile");
    const args = { ...a.buildArgs, [BASE_IMAGE_ARG]: a.baseImageArg };
    const base = await (a.base ?? readBase(a.client, a.baseRepository, a.baseDigest));
    const { top, targets, configs } = base;
    const warnings: string[] = [];
    if (!isIndex(top.mediaType)) {
        const c = configs[0];
        const actual = `${c.os ?? "?"}/${c.architecture ?? "?"}${c.variant ? `/${c.variant}` : ""}`;
        if (actual !== a.platform && `${actual}/v8` !== a.platform && actual !== `${a.platform}/v8`) {
            warnings.push(`base image ${a.client.host}/${a.baseRepository}@${a.baseDigest} is ${actual}, not the requested ${a.platform}; the app layer was added to it as is`);
        }
    }
    a.laps?.lap("base");
    const recipes = configs.map((c) => appRecipe(text, a.dockerfile, args, c.config?.Env, c.config?.WorkingDir));
    const placed = JSON.stringify(recipes[0].copies);
    if (recipes.some((r) => JSON.stringify(r.copies) !== placed)) {
        throw new NotDaemonlessError("the platforms of the base image resolve the COPY destinations differently (per-platform ENV/WORKDIR)");
    }
    const entries = copyEntries(a.contextDir, a.files, recipes[0].copies, path.basename(a.dockerfile));
    // Apps up to IN_MEMORY_LAYER_BYTES are layered in memory (no temp file round trip), larger ones on disk.
    const inputBytes = a.files.reduce((n, f) => n + f.size, 0);
    // The last layer written for this app's context and Dockerfile lends the chunks an edit left alone.
    const layer = await writeLayer(entries, inputBytes <= IN_MEMORY_LAYER_BYTES ? undefined : path.join(a.workDir, "layer.tar.gz"), {
        reuse: appLayerReuse(a.contextDir, a.dockerfile),
        onData: a.onLayerData,
    });
    a.laps?.lap("layer");
    const blobs: BlobSource[] = [{ digest: layer.digest, size: layer.size, file: layer.data ? undefined : layer.file, data: layer.data }];
    const children: PreparedImage["children"] = [];
    targets.forEach((t, i) => {
        const cfgBytes = serialize(recipes[i].apply(configs[i], layer.diffId));
        const cfgDigest = sha256(cfgBytes);
        if (!blobs.some((b) => b.digest === cfgDigest)) blobs.push({ digest: cfgDigest, size: cfgBytes.length, data: cfgBytes });
        const baseImage = { digest: t.desc?.digest ?? a.baseDigest, name: a.baseName };
        children.push(appendLayer(t.manifest, t.manifestMediaType, { digest: cfgDigest, size: cfgBytes.length }, layer, baseImage));
    });
    const topOut = isIndex(top.mediaType)
        ? replaceManifests(JSON.parse(top.bytes.toString("utf8")) as ImageIndex, top.mediaType, targets.map((t) => t.desc as Descriptor), children)
        : (children.pop() as ManifestBlob);
    return { layer, baseLayers: baseLayersOf(base), blobs, children, top: topOut, bytesDownloaded: a.client.stats.bytesDownloaded - before, warnings };
}

/** The app layer's upload while it is written (see layerStreamer). */
export interface LayerStreamer {
    /** writeLayer's onData. */
    onData(b: Buffer): void;
    /** Commits the streamed bytes as `digest`: "uploaded", or undefined when streaming failed or never started (upload it whole instead). */
    finish(digest: string, size: number): Promise<UploadResult | undefined>;
    /**
     * Sends a small blob (the image config) through the session opened beside the layer's, in one
     * PUT: "uploaded", or undefined when there is none (already used, never opened) or it failed
     * (upload it as usual).
     */
    putSmall(digest: string, data: Buffer): Promise<UploadResult | undefined>;
    /** Drops an unfinished upload (and an unused small one); settles once nothing of it is left running. */
    abort(): Promise<void>;
}

/**
 * Streams the layer to `repository` while it is written, so the push overlaps the writing: the
 * upload opens once `mounts` (the base layers) are in, since a declined mount must hand over to a
 * builder before any app byte is sent; bytes written before then wait (they are in memory anyway).
 * Any failure only falls back to the whole-blob upload (logged). THINLAYER_STREAM_UPLOAD=0 turns it off.
 */
export function layerStreamer(client: RegistryClient, repository: string, mounts: Promise<unknown>, log?: (s: string) => void): LayerStreamer {
    let stream: BlobStream | undefined;
    let off = false;
    const queued: Buffer[] = [];
    // The config's session, opened with the layer's (the config is known only at the layer's end,
    // when the registry is still taking the layer: one PUT then instead of three round trips).
    let small: Promise<OpenUpload | undefined> | undefined;
    const opened = mounts
        .then(() => {
            if (off) return undefined;
            small = client.openUpload(repository).catch(() => undefined);
            return client.startBlobStream(repository);
        })
        .then(
            (s) => {
                if (s === undefined) return; // aborted before it opened
                stream = s;
                for (const b of queued.splice(0)) s.write(b);
            },
            () => {
                off = true; // a declined mount (pushPrepared reports it) or no upload session: upload whole
                queued.length = 0;
            },
        );
    return {
        onData(b) {
            if (off) return;
            if (stream) stream.write(b);
            else queued.push(b);
        },
        async finish(digest, size) {
            await opened;
            if (!stream) return undefined;
            try {
                return await stream.finish(digest, size);
            } catch (e) {
                log?.(`streamed upload of the layer failed (${(e as Error).message}); uploading it whole`);
                return undefined;
            } finally {
                stream = undefined;
            }
        },
        async putSmall(digest, data) {
            const taken = small; // one blob per session: taken before any await (configs of an index come at once)
            small = undefined;
            const session = await taken;
            if (session === undefined) return undefined;
            try {
                return await session.put(digest, data);
            } catch (e) {
                log?.(`upload of ${digest.slice(0, 19)} through its early session failed (${(e as Error).message}); uploading it as usual`);
                return undefined;
            }
        },
        async abort() {
            off = true;
            await opened.then(() => stream?.abort());
            const left = small;
            small = undefined;
            await (await left)?.cancel().catch(() => undefined);
        },
    };
}

export function streamUploadEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
    return env.THINLAYER_STREAM_UPLOAD !== "0";
}

/**
 * Makes the base layers exist in `repository` (HEAD, else a cross-repository mount from
 * `baseRepository`; never an upload: only their digests are known), all at once. A declined mount
 * is a NotDaemonlessError (a builder can still push the image).
 */
export async function mountBaseLayers(client: RegistryClient, repository: string, layers: readonly Descriptor[], baseRepository: string): Promise<UploadResult[]> {
    const from = baseRepository === repository ? undefined : baseRepository;
    const settled = await Promise.allSettled(layers.map((l) => client.ensureBlob(repository, { digest: l.digest, size: l.size }, from)));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
        if (failed.reason instanceof MountDeclinedError) throw new NotDaemonlessError(failed.reason.message);
        throw failed.reason;
    }
    return settled.map((s) => (s as PromiseFulfilledResult<UploadResult>).value);
}

/**
 * Pushes a prepared image: base layers mounted from the base repository (when it differs), new
 * blobs uploaded when missing, child manifests, and only then the tagged manifest — so a tag never
 * names an image whose blobs are not all there.
 */
export async function pushPrepared(
    client: RegistryClient,
    repository: string,
    tag: string,
    p: PreparedImage,
    baseRepository: string,
    log?: (s: string) => void,
    /** Called just before the tag is put: a digest means the tag appeared meanwhile (keep it). */
    tagNow?: () => Promise<string | undefined>,
    /** Times the base-layer mounts ("mounts"), the new blobs ("upload") and the manifests ("manifest"). */
    laps?: Laps,
    /** mountBaseLayers of p.baseLayers, when the caller started it earlier (e.g. while the layer was written). */
    mounts?: Promise<UploadResult[]>,
    /** The layer's upload, when it was streamed while written (layerStreamer): its result, or undefined to upload it now. */
    streamed?: LayerStreamer,
): Promise<{ digest: string; uploaded: number; mounted: number; raced: boolean }> {
    const from = baseRepository === repository ? undefined : baseRepository;
    // Base layers first (HEADs and mounts, no bytes): when the registry declines a mount, the
    // builder takes over before any app byte is sent.
    const mountedBase = await (mounts ?? mountBaseLayers(client, repository, p.baseLayers, baseRepository));
    laps?.lap("mounts");
    // Did the tag appear meanwhile (and are the files still those of the tag)? Asked now, while
    // the blobs go up, rather than after them: its answer is on the critical path otherwise
    // (~5-10 ms), and a tag put in the milliseconds between is still caught by the put itself on
    // an IMMUTABLE repository, or overwritten with the same inputs' image on a mutable one.
    const tagBefore = tagNow?.();
    tagBefore?.catch(() => undefined); // awaited below, once every blob has settled
    // Then the new blobs (the layer, the configs); manifests only after all. All settled before
    // a failure is thrown: no upload is left running behind a failed push.
    const sent = await Promise.allSettled(
        p.blobs.map(async (b) => {
            const early = b.digest === p.layer.digest ? streamed?.finish(b.digest, b.size) : b.data !== undefined ? streamed?.putSmall(b.digest, b.data) : undefined;
            const r = (await early) ?? (await client.ensureBlob(repository, b, b.digest === p.layer.digest ? from : undefined));
            log?.(`blob ${b.digest.slice(7, 19)} (${b.size} B): ${r}`);
            return r;
        }),
    );
    const failedBlob = sent.find((x): x is PromiseRejectedResult => x.status === "rejected");
    if (failedBlob) throw failedBlob.reason;
    const results = [...mountedBase, ...sent.map((x) => (x as PromiseFulfilledResult<UploadResult>).value)];
    laps?.lap("upload");
    const uploaded = results.filter((r) => r === "uploaded").length;
    const mounted = results.filter((r) => r === "mounted").length;
    for (const c of p.children) await client.putManifest(repository, c.digest, c.bytes, c.mediaType);
    const before = await tagBefore;
    if (before !== undefined) return { digest: before, uploaded, mounted, raced: true };
    try {
        const digest = await client.putManifest(repository, tag, p.top.bytes, p.top.mediaType);
        laps?.lap("manifest");
        return { digest, uploaded, mounted, raced: false };
    } catch (e) {
        // IMMUTABLE repositories refuse a second put of a tag: if it exists now, another run won.
        const now = await tagNow?.().catch(() => undefined);
        if (now !== undefined) return { digest: now, uploaded, mounted, raced: true };
        throw e;
    }
}
