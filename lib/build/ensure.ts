/**
 * `thinlayer ensure base|app`: make sure `repo:tag` exists in the registry — reuse it when it does
 * (the registry, not a stack's state, is the source of truth), else build it and push it.
 *
 * This module holds the pure argv builder the Pulumi program uses (`ensureCommandArgs`), the
 * preview-time probe (`tagExists`) and the orchestration (`ensureImage`).
 */
import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildAndPush, builderAvailable, builderInstallHint, selectBuilder } from "./builders";
import { baseFromCache, baseLayersOf, confirmBase, IN_MEMORY_LAYER_BYTES, layerStreamer, mountBaseLayers, prepareApp, pushPrepared, readBase, streamUploadEnabled, type BaseImage } from "./daemonless";
import { inputError, ThinlayerError } from "../errors";
import { Laps } from "../format";
import { BASE_IMAGE_ARG } from "../hashing/inputs";
import { NotDaemonlessError } from "../layer/writer";
import { appTag, baseTag, computeAppInputs, computeBaseInputs, type InputsResult } from "../plan";
import { attestEnsured, recordOf, type AttestationSummary } from "../provenance/attest";
import type { InputRecord } from "../provenance/statement";
import type { Descriptor } from "../oci/mediatypes";
import { gitSource } from "../provenance/record";
import { RegistryClient } from "../oci/client";
import { parseImageRef, parseRepository } from "../oci/reference";
import { TAG, type BuilderChoice, type BuilderName } from "../rules";

export type ImageKind = "base" | "app";
export type EnsureAction = "built" | "reused";
export type EnsureHow = "registry" | "daemonless" | BuilderName;

/** Options of one `thinlayer ensure` run, as the CLI parses them and `ensureCommandArgs` writes them. */
export interface EnsureOptions {
    /** Which image. */
    image: ImageKind;
    /** Build context directory. */
    context: string;
    /** Dockerfile path (absolute, or relative to the working directory). */
    dockerfile: string;
    /** `host[:port]/repo`, no tag. */
    repository: string;
    /** Target platform. @default "linux/amd64" */
    platform?: string;
    /** Build args (base, and the builder fallback of app). */
    buildArgs?: Record<string, string>;
    /** The tag the plan computed (`deps-<12 hex>` / `app-<12 hex>`); recomputed and checked. */
    expectTag: string;
    /** App only: the base image by digest, `host/repo@sha256:…`. */
    baseRef?: string;
    /** App only: the base content hash (64 hex), part of the app hash. */
    baseHash?: string;
    /** Builder choice. @default "auto" */
    builder?: BuilderChoice;
    /** Print one JSON object on stdout. @default true in ensureCommandArgs */
    json?: boolean;
    /**
     * A second tag (e.g. `prod-app-0123456789ab`) to point at the same manifest digest once the
     * image exists, so a per-stack lifecycle rule keeps what that stack deployed. Created by
     * re-PUTting the manifest bytes (no blob upload); an existing keep tag with another digest is
     * an error (never overwritten).
     */
    keepTag?: string;
}

/** The single JSON object `ensure --json` prints. */
export interface EnsureResult {
    ref: string;
    repository: string;
    tag: string;
    digest: string;
    action: EnsureAction;
    how: EnsureHow;
    bytesUploaded: number;
    bytesDownloaded: number;
    seconds: number;
    /** Set when another run pushed the tag first and our reproducible result differs (never overwritten). */
    ourDigest?: string;
    /** The keep tag (`--keep-tag`), present when asked for: it points at `digest`. */
    keepTag?: { tag: string; action: "created" | "exists" };
    warnings?: string[];
    /** The provenance statement attached to `digest` (lib/provenance); its bytes are not in bytesUploaded. */
    attestation?: AttestationSummary;
}

/** Throws the input error for a keep tag outside the tag grammar (lib/rules.ts TAG). */
export function checkKeepTag(tag: string): void {
    if (!TAG.test(tag)) {
        throw inputError({ input: "--keep-tag", value: JSON.stringify(tag), allowed: `${TAG.allowed}, e.g. prod-app-0123456789ab`, fix: "pass <stack>-<image tag>" });
    }
}

/**
 * The argv after `thinlayer` for one ensure run (pure; the Pulumi local.Command runs
 * `node <projectDir>/bin/thinlayer.js ...this`). Build args are sorted so the command line — and
 * so the resource's inputs — do not depend on object key order.
 */
export function ensureCommandArgs(opts: EnsureOptions): string[] {
    const argv = ["ensure", opts.image, "--context", opts.context, "--dockerfile", opts.dockerfile, "--repository", opts.repository, "--platform", opts.platform ?? "linux/amd64"];
    for (const k of Object.keys(opts.buildArgs ?? {}).sort()) argv.push("--build-arg", `${k}=${(opts.buildArgs ?? {})[k]}`);
    if (opts.image === "app") {
        if (opts.baseRef !== undefined) argv.push("--base-ref", opts.baseRef);
        if (opts.baseHash !== undefined) argv.push("--base-hash", opts.baseHash);
    }
    argv.push("--expect-tag", opts.expectTag);
    if (opts.builder !== undefined && opts.builder !== "auto") argv.push("--builder", opts.builder);
    if (opts.keepTag !== undefined) argv.push("--keep-tag", opts.keepTag);
    if (opts.json ?? true) argv.push("--json");
    return argv;
}

/**
 * Whether `repository:tag` exists, for preview-time logging. Never throws: auth or network trouble
 * (or a malformed repository) gives "unknown".
 */
export async function tagExists(repository: string, tag: string, opts: { timeoutMs?: number; dockerConfig?: string } = {}): Promise<"exists" | "missing" | "unknown"> {
    try {
        const { host, repository: repo } = parseRepository(repository);
        const client = new RegistryClient(host, { timeoutMs: opts.timeoutMs ?? 10_000, attempts: 2, dockerConfig: opts.dockerConfig });
        return (await client.headManifest(repo, tag)) ? "exists" : "missing";
    } catch {
        return "unknown";
    }
}

/** Knobs for `ensureImage` beyond the CLI options (tests, the benchmark). */
export interface EnsureRuntime {
    /** Progress lines (stderr in the CLI). */
    log?: (line: string) => void;
    /** Docker config.json to read credentials from instead of $DOCKER_CONFIG / ~/.docker. */
    dockerConfig?: string;
    /** Extra environment for builders (buildah storage in tests). */
    builderEnv?: NodeJS.ProcessEnv;
    /** Also compute what a rebuild would give when the tag exists, and report a difference (daemonless app only). */
    verify?: boolean;
    /** Use this registry client (its counters feed the result). */
    client?: RegistryClient;
    /** Attach the provenance statement (lib/provenance/attest.ts). @default true */
    attest?: boolean;
    /** Sign the statement (a DSSE envelope) with this Ed25519 / ECDSA P-256 key. @default - unsigned */
    signingKey?: KeyObject;
    /** Where the wall time goes (logged as one `time:` line at the end). @default a new Laps */
    laps?: Laps;
    /**
     * Called once the build has read every input file: the tag the files give now (the attestation's
     * record, computed from then on), or undefined when it could not be computed. A tag other than
     * the build's means a file changed while it was read: the tag is then never put.
     */
    filesRead?: () => Promise<string | undefined>;
    /** Called when the image's manifest is known, before it is pushed: `subjectPut` settles true once it is put under the tag, else false. */
    attachEarly?: (subject: Descriptor, subjectPut: Promise<boolean>) => void;
}

/**
 * Makes sure `repository:tag` exists: check first (reuse when present), else build and push.
 * The tag is recomputed from the files and must equal `expectTag`. With `keepTag`, then makes
 * sure `repository:keepTag` points at the same digest (see `ensureKeepTag`).
 */
export async function ensureImage(o: EnsureOptions, rt: EnsureRuntime = {}): Promise<EnsureResult> {
    const laps = rt.laps ?? new Laps();
    // One client for the image and its attestation: credentials (an ECR token) resolved once.
    const client = rt.client ?? new RegistryClient(parseRepository(o.repository).host, { log: rt.log, dockerConfig: rt.dockerConfig });
    if (rt.attest === false) {
        // No record to compute, but the files are still checked once read (see filesRead).
        const filesRead = () => inputsOf(o).then((x) => x.tag, () => undefined);
        return ensureTags(o, { ...rt, client, laps, filesRead });
    }
    // The attestation's own counters (its bytes stay out of the image's bytesUploaded), same credentials.
    const attestClient = client.sharingAuth();
    // The git state for the attestation, read while the image is made (git status can take a while);
    // the record itself once the image's files are read (the daemonless path: while it pushes).
    const source = gitSource(path.resolve(o.context));
    let record: Promise<InputRecord> | undefined;
    const filesRead = () => {
        record ??= recordOf(o, source);
        return record.then(
            (x) => x.tag,
            () => undefined, // attestEnsured reports it
        );
    };
    // The daemonless path attaches while it pushes (attachStatement's early attachment).
    let early: { digest: string; attested: ReturnType<typeof attestEnsured> } | undefined;
    const attachEarly = (subject: Descriptor, subjectPut: Promise<boolean>) => {
        early = { digest: subject.digest, attested: attestEnsured(o, { digest: subject.digest, tag: o.expectTag }, { ...rt, client: attestClient, source, record, early: { subject, subjectPut } }) };
    };
    let r: EnsureResult;
    try {
        r = await ensureTags(o, { ...rt, client, laps, filesRead, attachEarly });
    } catch (e) {
        await early?.attested; // ends at once (the image was not put): nothing left running after we return
        throw e;
    }
    // After the tags: its bytes stay out of bytesUploaded, and its failure is only a warning.
    const ours = r.action === "built" && early?.digest === r.digest;
    const earlyResult = await early?.attested;
    const a = ours && earlyResult ? earlyResult : await attestEnsured(o, r, { ...rt, client: attestClient, source, record });
    laps.lap("provenance");
    rt.log?.(`time: ${laps}`);
    return { ...r, ...(a.warning ? { warnings: [...(r.warnings ?? []), a.warning] } : {}), ...(a.attestation ? { attestation: a.attestation } : {}) };
}

async function ensureTags(o: EnsureOptions, rt: EnsureRuntime): Promise<EnsureResult> {
    if (o.keepTag === undefined) return ensureMainTag(o, rt);
    checkKeepTag(o.keepTag);
    const log = rt.log ?? (() => undefined);
    const client = rt.client ?? new RegistryClient(parseRepository(o.repository).host, { log, dockerConfig: rt.dockerConfig });
    const r = await ensureMainTag(o, { ...rt, client });
    const up = client.stats.bytesUploaded;
    const down = client.stats.bytesDownloaded;
    const t1 = process.hrtime.bigint();
    const action = await ensureKeepTag(client, parseRepository(o.repository).repository, r.digest, o.keepTag, log);
    rt.laps?.lap("keep tag");
    const seconds = Math.round(r.seconds * 1000 + Number(process.hrtime.bigint() - t1) / 1e6) / 1000;
    return { ...r, seconds, bytesUploaded: r.bytesUploaded + client.stats.bytesUploaded - up, bytesDownloaded: r.bytesDownloaded + client.stats.bytesDownloaded - down, keepTag: { tag: o.keepTag, action } };
}

/**
 * Makes sure `repo:keepTag` names `digest`: HEAD it; when missing, GET the manifest bytes by
 * digest and PUT them under the keep tag (same bytes, same media type: an index stays an index;
 * no blob moves). A keep tag already naming another digest is an error, never overwritten; one a
 * concurrent run created with the same digest is success.
 */
export async function ensureKeepTag(client: RegistryClient, repo: string, digest: string, keepTag: string, log: (line: string) => void = () => undefined): Promise<"created" | "exists"> {
    const conflict = (theirs: string) =>
        new ThinlayerError(
            `keep tag ${client.host}/${repo}:${keepTag} already points at ${theirs}, but this image is ${digest}; the keep tag was not changed (never overwritten). ` +
                `Fix: find out what pushed ${keepTag} (a keep tag is <stack>-<image tag>, so the same tag must always name the same image); delete that tag by hand if it is wrong, then rerun.`,
        );
    const existing = await client.headManifest(repo, keepTag);
    if (existing) {
        if (existing.digest !== digest) throw conflict(existing.digest);
        log(`keep tag ${keepTag} already points at ${digest}`);
        return "exists";
    }
    const m = await client.getManifest(repo, digest);
    try {
        await client.putManifest(repo, keepTag, m.bytes, m.mediaType);
    } catch (e) {
        // IMMUTABLE tags: a concurrent run may have created it first. Same digest is success.
        const now = await client.headManifest(repo, keepTag).catch(() => undefined);
        if (now === undefined) throw e;
        if (now.digest !== digest) throw conflict(now.digest);
        log(`keep tag ${keepTag} was created meanwhile by another run, same digest`);
        return "exists";
    }
    const now = await client.headManifest(repo, keepTag);
    if (now?.digest !== digest) throw conflict(now?.digest ?? "(missing)");
    log(`keep tag ${keepTag} -> ${digest}`);
    return "created";
}

/** One ensure run of one tag: what it was asked, what the files give, and how it reports. */
interface Job {
    o: EnsureOptions;
    rt: EnsureRuntime;
    log: (line: string) => void;
    client: RegistryClient;
    host: string;
    repository: string;
    contextDir: string;
    dockerfile: string;
    buildArgs: Record<string, string>;
    platform: string;
    inputs: InputsResult;
    tag: string;
    /** The result for `digest`, with the inputs' warnings, the client's byte counts and the time so far. */
    result(digest: string, action: EnsureAction, how: EnsureHow, extra?: Partial<EnsureResult>): EnsureResult;
}

async function ensureMainTag(o: EnsureOptions, rt: EnsureRuntime): Promise<EnsureResult> {
    const { host, repository } = parseRepository(o.repository);
    const client = rt.client ?? new RegistryClient(host, { log: rt.log, dockerConfig: rt.dockerConfig });
    // Check first (the registry is the source of truth), while the files are hashed: the plan's tag,
    // which the files must give (startJob throws otherwise). When it is missing, an app's base
    // (manifest and config, a few hundred bytes) is read meanwhile too.
    const head = client.headManifest(repository, o.expectTag);
    const sameHostBase = o.image === "app" ? sameHostBaseRef(o.baseRef, host) : undefined;
    // The base from this machine's copy when it has one (by digest: it cannot have changed), else from the registry.
    const cached = sameHostBase && baseFromCache(sameHostBase.digest);
    const base = sameHostBase && (cached ? Promise.resolve(cached) : head.then((e) => (e ? undefined : readBase(client, sameHostBase.repository, sameHostBase.digest))));
    // Settled later, or never (an input error ends the run first): never an unhandled rejection.
    head.catch(() => undefined);
    base?.catch(() => undefined);
    const job = await startJob(o, { ...rt, client });
    const { tag, log } = job;
    const existing = await head;
    rt.laps?.lap("check");
    const baseRef = o.image === "app" ? parseImageRef(o.baseRef as string, "--base-ref") : undefined;
    const daemonless = o.image === "app" && job.inputs.copyOnly;
    if (existing && !(rt.verify && daemonless)) {
        log(`${host}/${repository}:${tag} exists (${existing.digest}); nothing to build`);
        return job.result(existing.digest, "reused", "registry");
    }
    if (baseRef && baseRef.digest === undefined) {
        throw inputError({ input: "--base-ref", value: o.baseRef as string, allowed: "host/repo@sha256:<64 hex> (a digest, never a mutable tag)", fix: "pass the ref that `ensure base` printed" });
    }
    if (daemonless && baseRef?.digest !== undefined) {
        if (baseRef.host !== host) {
            log(`base ${baseRef.host} is another registry than ${host}: daemonless build needs both in one registry; using a builder`);
        } else {
            try {
                // The read begun above, or (the tag exists: a --verify rebuild) one now.
                const read = (base ?? Promise.resolve(undefined)).then((b) => b ?? readBase(client, baseRef.repository, baseRef.digest as string));
                return await daemonlessApp(job, baseRef.repository, baseRef.digest, existing?.digest, read);
            } catch (e) {
                if (!(e instanceof NotDaemonlessError)) throw e;
                log(`daemonless build not possible (${e.message}); using a builder`);
            }
        }
    }
    if (existing) return job.result(existing.digest, "reused", "registry");
    return builderBuild(job, baseRef);
}

/** `--base-ref` as repository and digest when it is a digest ref on `host` (a daemonless build's base); else undefined (startJob reports bad values). */
function sameHostBaseRef(ref: string | undefined, host: string): { repository: string; digest: string } | undefined {
    try {
        const r = parseImageRef(ref ?? "", "--base-ref");
        return r.host === host && r.digest !== undefined ? { repository: r.repository, digest: r.digest } : undefined;
    } catch {
        return undefined;
    }
}

/** The inputs of the image `o` describes, as the files give them now, and the tag they give. */
async function inputsOf(o: EnsureOptions): Promise<{ inputs: InputsResult; tag: string }> {
    const a = { contextDir: path.resolve(o.context), dockerfile: path.resolve(o.dockerfile), buildArgs: o.buildArgs ?? {}, platform: o.platform ?? "linux/amd64" };
    if (o.image === "base") {
        const inputs = await computeBaseInputs(a);
        return { inputs, tag: baseTag(inputs.hash) };
    }
    if (o.baseHash === undefined || o.baseRef === undefined) {
        throw inputError({ input: "ensure app", value: `--base-ref ${o.baseRef ?? "(missing)"} --base-hash ${o.baseHash ?? "(missing)"}`, allowed: "both --base-ref host/repo@sha256:… and --base-hash <64 hex>", fix: "pass the base image's digest ref and content hash (ensure base prints the ref)" });
    }
    const inputs = await computeAppInputs({ ...a, baseHash: o.baseHash });
    return { inputs, tag: appTag(inputs.hash) };
}

/** Resolves the options and computes the tag from the files, which must be the plan's (`expectTag`). */
async function startJob(o: EnsureOptions, rt: EnsureRuntime): Promise<Job> {
    const t0 = process.hrtime.bigint();
    const log = rt.log ?? (() => undefined);
    const platform = o.platform ?? "linux/amd64";
    const buildArgs = o.buildArgs ?? {};
    const { host, repository } = parseRepository(o.repository);
    const client = rt.client ?? new RegistryClient(host, { log, dockerConfig: rt.dockerConfig });
    const contextDir = path.resolve(o.context);
    const dockerfile = path.resolve(o.dockerfile);
    const { inputs, tag } = await inputsOf(o);
    rt.laps?.lap("inputs");
    if (tag !== o.expectTag) {
        throw inputError({
            input: "--expect-tag",
            value: o.expectTag,
            allowed: `the tag the files give now, ${tag}`,
            fix: "the build inputs changed between plan and build; rerun the plan (pulumi up) so both see the same files",
        });
    }
    const result = (digest: string, action: EnsureAction, how: EnsureHow, extra: Partial<EnsureResult> = {}): EnsureResult => {
        const { warnings: extraWarnings, ...rest } = extra;
        const warnings = [...inputs.warnings, ...(extraWarnings ?? [])];
        return {
            ref: `${host}/${repository}@${digest}`,
            repository: `${host}/${repository}`,
            tag,
            digest,
            action,
            how,
            bytesUploaded: client.stats.bytesUploaded,
            bytesDownloaded: client.stats.bytesDownloaded,
            seconds: Math.round(Number(process.hrtime.bigint() - t0) / 1e6) / 1000,
            ...rest,
            ...(warnings.length ? { warnings } : {}),
        };
    };
    return { o, rt, log, client, host, repository, contextDir, dockerfile, buildArgs, platform, inputs, tag, result };
}

/** The builder path: build and push with the selected builder, never overwriting a tag another run pushed meanwhile. */
async function builderBuild(job: Job, baseRef: { repository: string; digest?: string } | undefined): Promise<EnsureResult> {
    const { o, rt, client, host, repository, tag, log, platform } = job;
    const builderEnv = { ...process.env, ...(rt.builderEnv ?? {}) };
    const builder = selectBuilder(o.builder ?? "auto", (b) => builderAvailable(b, builderEnv), (b) => builderInstallHint(b, builderEnv));
    const args = o.image === "app" ? { ...job.buildArgs, [BASE_IMAGE_ARG]: o.baseRef as string } : job.buildArgs;
    log(`building ${host}/${repository}:${tag} with ${builder} (${platform})`);
    let raced: string | undefined;
    try {
        await buildAndPush({ builder, contextDir: job.contextDir, dockerfile: job.dockerfile, ref: `${host}/${repository}:${tag}`, host, platform, buildArgs: args, credentials: await client.resolvedCredentials(), env: rt.builderEnv }, async () => {
            // Between build and push: if the tag appeared meanwhile, pushing would overwrite it.
            raced = (await client.headManifest(repository, tag))?.digest;
            return raced !== undefined;
        });
    } catch (e) {
        // The IMMUTABLE race: another run pushed this tag first. That is success.
        const now = await client.headManifest(repository, tag).catch(() => undefined);
        if (now) {
            log(`push failed but ${tag} now exists (${now.digest}): another run pushed it first; using it`);
            return job.result(now.digest, "reused", "registry");
        }
        throw e;
    }
    if (raced !== undefined) {
        log(`${tag} appeared meanwhile as ${raced}; kept it (our build was not pushed)`);
        return job.result(raced, "reused", "registry");
    }
    const pushed = await client.headManifest(repository, tag);
    if (!pushed) throw new ThinlayerError(`${builder} reported success but ${host}/${repository}:${tag} is not in the registry. Fix: check the builder's push output above.`);
    // The builder moved the bytes, not our client: report the blobs its image adds (an upper bound).
    const added = await builderBlobBytes(client, repository, pushed.digest, baseRef).catch(() => 0);
    return job.result(pushed.digest, "built", builder, { bytesUploaded: client.stats.bytesUploaded + added });
}

/** The daemonless app path: prepare, re-check the tag, push blobs then manifests. `existing`: the tag's digest when it exists (a --verify rebuild). */
async function daemonlessApp(job: Job, baseRepo: string, baseDigest: string, existing: string | undefined, base: Promise<BaseImage>): Promise<EnsureResult> {
    const { client, host, repository, tag, log } = job;
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-layer-"));
    // The base layers are mounted into the repository while the layer is written (no bytes move),
    // once the registry has confirmed it has the base when it was read from this machine's copy.
    const mounts = existing
        ? undefined
        : base.then(async (b) => {
              if (b.fromCache) await confirmBase(client, baseRepo, baseDigest);
              return mountBaseLayers(client, repository, baseLayersOf(b), baseRepo);
          });
    mounts?.catch(() => undefined); // awaited by pushPrepared, unless the layer write fails first
    let saved: Promise<void> | undefined; // the layer's copy for the next run's reuse, written during the push
    let putSettled: (put: boolean) => void = () => undefined; // tells an early attachment whether the image was put
    // An in-memory layer streams to the registry while it is written (its bytes are held anyway).
    const inMemory = job.inputs.files.reduce((n, f) => n + f.size, 0) <= IN_MEMORY_LAYER_BYTES;
    const streamer = mounts && inMemory && streamUploadEnabled() ? layerStreamer(client, repository, mounts, log) : undefined;
    try {
        const prepared = await prepareApp({
            client,
            baseRepository: baseRepo,
            baseDigest,
            contextDir: job.contextDir,
            dockerfile: job.dockerfile,
            buildArgs: job.buildArgs,
            files: job.inputs.files,
            platform: job.platform,
            workDir: work,
            baseImageArg: job.o.baseRef as string,
            baseName: `${host}/${baseRepo}`,
            base,
            onLayerData: streamer?.onData,
            laps: job.rt.laps,
        });
        // The layer holds the files: what they give now is computed during the push, and checked before the tag.
        saved = prepared.layer.saved;
        const filesNow = job.rt.filesRead?.();
        const ours = prepared.top.digest;
        log(`app layer ${prepared.layer.digest} (${prepared.layer.size} B gzip, ${prepared.layer.entries} entries; deflate chunks: ${prepared.layer.chunks.reused} reused, ${prepared.layer.chunks.deflated} deflated); manifest ${ours}`);
        const differs = (theirs: string): Partial<EnsureResult> =>
            theirs === ours ? { warnings: prepared.warnings } : { ourDigest: ours, warnings: [...prepared.warnings, `${host}/${repository}:${tag} already exists as ${theirs}, but a reproducible rebuild of the same inputs gives ${ours}; the existing tag was kept (never overwritten). Investigate how it was built.`] };
        if (existing) return job.result(existing, "reused", "registry", differs(existing));
        let settlePut: (put: boolean) => void = () => undefined;
        job.rt.attachEarly?.(
            { mediaType: prepared.top.mediaType, digest: ours, size: prepared.top.bytes.length },
            new Promise<boolean>((res) => (settlePut = res)),
        );
        putSettled = settlePut;
        const pushed = await pushPrepared(client, repository, tag, prepared, baseRepo, log, async () => {
            // Just before the tag is written: did another run push it meanwhile? Then keep theirs.
            // And did a file change while the layer was written? Then the layer is not the tag's.
            const [now, given] = await Promise.all([client.headManifest(repository, tag), filesNow]);
            if (given !== undefined && given !== tag) {
                throw inputError({
                    input: "build context",
                    value: `${job.contextDir} changed while ensure read it (the files gave ${tag}, and give ${given} after the layer was written)`,
                    allowed: "files that stay unchanged while ensure runs",
                    fix: `rerun (pulumi up): nothing was tagged; the uploaded blobs are unreferenced`,
                });
            }
            return now?.digest;
        }, job.rt.laps, mounts, streamer);
        if (pushed.raced) {
            log(`${tag} appeared meanwhile as ${pushed.digest}; kept it`);
            return job.result(pushed.digest, "reused", "registry", differs(pushed.digest));
        }
        if (pushed.digest !== ours) throw new ThinlayerError(`registry stored ${pushed.digest} for a manifest whose digest is ${ours}`);
        putSettled(true);
        return job.result(pushed.digest, "built", "daemonless", { warnings: prepared.warnings });
    } finally {
        putSettled(false); // raced, failed or not pushed (a no-op after true)
        // Nothing left running once we return or throw (e.g. after a failed layer write): the
        // stream dropped (a no-op once finished), the mounts settled, the reuse copy saved.
        await streamer?.abort();
        await mounts?.catch(() => undefined);
        await saved;
        fs.rmSync(work, { recursive: true, force: true });
    }
}

/** Sum of config + layer sizes of an image, less the layers of the base (when given). */
async function builderBlobBytes(client: RegistryClient, repository: string, digest: string, base?: { repository: string; digest?: string }): Promise<number> {
    const layersOf = async (repo: string, ref: string): Promise<Array<{ digest: string; size: number }>> => {
        const m = JSON.parse((await client.getManifest(repo, ref)).bytes.toString("utf8")) as { config?: { digest: string; size: number }; layers?: Array<{ digest: string; size: number }>; manifests?: Array<{ digest: string }> };
        if (m.manifests) return (await Promise.all(m.manifests.map((d) => layersOf(repo, d.digest)))).flat();
        return [...(m.config ? [m.config] : []), ...(m.layers ?? [])];
    };
    const ours = await layersOf(repository, digest);
    const theirs = new Set(base?.digest ? (await layersOf(base.repository, base.digest)).map((l) => l.digest) : []);
    const seen = new Set<string>();
    let n = 0;
    for (const l of ours) {
        if (theirs.has(l.digest) || seen.has(l.digest)) continue;
        seen.add(l.digest);
        n += l.size;
    }
    return n;
}
