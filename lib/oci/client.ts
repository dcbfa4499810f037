/**
 * A small OCI Distribution client over node:http(s) (./http.ts): auth (anonymous, Basic, Bearer token
 * challenge, ECR, Docker config.json), manifests and blobs, uploads (monolithic and streamed, with a
 * cross-repository mount attempt), retries with backoff on 429/5xx/connection errors, timeouts.
 *
 * Secrets live in `Credentials` and in the cached Authorization headers only; every error and log
 * line is built from method, URL path, status and the credential *source*.
 */
import { sha256 } from "../hashing/digest";
import * as fs from "node:fs";
import { ThinlayerError } from "../errors";
import { Credentials, hasBasic, resolveCredentials } from "./credentials";
import { MANIFEST_ACCEPT } from "./mediatypes";
import { isLoopbackHost } from "./reference";
import { HttpError, httpRequest, httpStream, type HttpResponse } from "./http";

/** Why a registry call failed, in words a user can act on. */
export class RegistryError extends ThinlayerError {
    constructor(
        message: string,
        /** UNREACHABLE, UNAUTHORIZED, DENIED, NAME_UNKNOWN, MANIFEST_UNKNOWN, DIGEST_INVALID, … (the registry's code when it sent one). */
        readonly code: string,
        readonly status?: number,
    ) {
        super(message);
        this.name = "RegistryError";
    }
}

/**
 * A blob the target repository lacks that the registry would not mount from `from` (it answered
 * the mount with an upload session instead — ECR unless the account setting BLOB_MOUNTING is
 * enabled), and that we cannot upload because we only know it by digest (a base layer).
 */
export class MountDeclinedError extends RegistryError {
    constructor(
        readonly digest: string,
        readonly from: string,
        readonly repository: string,
    ) {
        super(
            `registry declined cross-repository mount of ${digest} from ${from} (into ${repository}); enable ECR BLOB_MOUNTING (aws ecr put-account-setting --name BLOB_MOUNTING --value ENABLED) or push base and app to one repository`,
            "MOUNT_DECLINED",
        );
        this.name = "MountDeclinedError";
    }
}

export interface RegistryClientOptions {
    /** Credentials to use instead of resolving them (ECR, config.json, anonymous). */
    credentials?: Credentials;
    /** A Docker config.json to read instead of $DOCKER_CONFIG / ~/.docker. */
    dockerConfig?: string;
    /** Per-request timeout for small requests, ms. @default 30000 */
    timeoutMs?: number;
    /** Attempts per request on 429/5xx/connection errors. @default 4 */
    attempts?: number;
    /** First backoff delay, ms (doubles each attempt, with jitter). @default 250 */
    backoffMs?: number;
    /** Blobs up to this size are sent in one PUT; larger ones in one streamed PATCH, read this much at a time. @default 16 MiB */
    chunkSize?: number;
    /** Progress lines (never secrets). */
    log?: (line: string) => void;
}

/** Bytes moved by one client, for the `ensure` output and the benchmark. */
export interface TransferStats {
    bytesUploaded: number;
    bytesDownloaded: number;
    requests: number;
}

export interface ManifestInfo {
    digest: string;
    mediaType: string;
    size: number;
}

export interface FetchedManifest extends ManifestInfo {
    bytes: Buffer;
}

/** A blob to upload: bytes in memory or a file on disk, with its known digest and size. */
export interface BlobSource {
    digest: string;
    size: number;
    data?: Buffer;
    file?: string;
}

export type UploadResult = "exists" | "mounted" | "uploaded";

/** An upload in progress (RegistryClient.startBlobStream). */
export interface BlobStream {
    /** Queues a piece; false when the connection's buffer is full (the caller holds the bytes anyway, or waits). */
    write(chunk: Buffer): boolean;
    /** Ends the upload as `digest`; rejects when any part of it failed. */
    finish(digest: string, size: number): Promise<UploadResult>;
    /** Gives up (nothing is committed). */
    abort(): void;
}

/** An upload session opened ahead of its blob (openUpload): `put` sends the blob whole, once; `cancel` drops an unused one. */
export interface OpenUpload {
    put(digest: string, data: Buffer): Promise<UploadResult>;
    cancel(): Promise<void>;
}

interface RequestOptions {
    /** Repository and the actions the call needs (for Bearer scopes). */
    scope?: string;
    headers?: Record<string, string>;
    body?: Buffer;
    /** Statuses that are a normal answer (others raise). */
    ok: number[];
    timeoutMs?: number;
    /** What the call is, for errors: "HEAD manifest thinlayer/app:deps-…". */
    what: string;
    /** Upload-session calls are not retried here: a lost session restarts the whole upload. */
    noRetry?: boolean;
}

/** An upload session's Location with the `digest` query that commits it (Location may carry a query already). */
function withDigest(location: string, digest: string): string {
    return `${location}${location.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parses a WWW-Authenticate header: scheme + key="value" params. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
    const m = /^\s*(\w+)\s*(.*)$/.exec(header);
    const scheme = (m?.[1] ?? "").toLowerCase();
    const params: Record<string, string> = {};
    const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
    let p: RegExpExecArray | null;
    while ((p = re.exec(m?.[2] ?? "")) !== null) params[p[1].toLowerCase()] = p[2] ?? p[3];
    return { scheme, params };
}

/** A client's credentials and what the registry's challenge made of them (shared by sharingAuth). */
interface ClientAuth {
    creds?: Credentials;
    basicHeader?: string;
    tokens: Map<string, string>;
    challenge?: { scheme: string; params: Record<string, string> };
}

/** One registry host. Create one per host; it caches credentials and tokens. */
export class RegistryClient {
    readonly host: string;
    readonly baseUrl: string;
    readonly stats: TransferStats = { bytesUploaded: 0, bytesDownloaded: 0, requests: 0 };
    private readonly opts: Required<Omit<RegistryClientOptions, "credentials" | "dockerConfig" | "log">> & Pick<RegistryClientOptions, "log" | "dockerConfig">;
    /** Credentials and what the registry's challenge made of them: shared with sharingAuth() copies. */
    private readonly auth: ClientAuth;

    constructor(host: string, opts: RegistryClientOptions = {}, shared?: ClientAuth) {
        this.host = host;
        this.baseUrl = `${isLoopbackHost(host) ? "http" : "https"}://${host}`;
        this.auth = shared ?? { creds: opts.credentials, tokens: new Map() };
        this.opts = {
            timeoutMs: opts.timeoutMs ?? 30_000,
            attempts: opts.attempts ?? 4,
            backoffMs: opts.backoffMs ?? 250,
            chunkSize: opts.chunkSize ?? 16 * 1024 * 1024,
            log: opts.log,
            dockerConfig: opts.dockerConfig,
        };
    }

    /**
     * A client for the same host with its own byte counters, sharing this one's credentials and
     * tokens (resolved once: e.g. one ECR token for an image and its attestation).
     */
    sharingAuth(): RegistryClient {
        return new RegistryClient(this.host, { ...this.opts }, this.auth);
    }

    /** The credentials this client uses (for handing to a builder's temporary auth file). */
    async resolvedCredentials(): Promise<Credentials> {
        return this.credentials();
    }

    private async credentials(): Promise<Credentials> {
        this.auth.creds ??= await resolveCredentials(this.host, { dockerConfig: this.opts.dockerConfig });
        return this.auth.creds;
    }

    /** HEAD a manifest: its digest/type/size, or undefined when the tag or repository is unknown. */
    async headManifest(repo: string, reference: string): Promise<ManifestInfo | undefined> {
        const res = await this.request("HEAD", `/v2/${repo}/manifests/${reference}`, {
            scope: `repository:${repo}:pull`,
            headers: { Accept: MANIFEST_ACCEPT },
            ok: [200, 404],
            what: `HEAD manifest ${repo}:${reference}`,
        });
        if (res.status === 404) return undefined;
        const digest = res.headers.get("docker-content-digest");
        const mediaType = (res.headers.get("content-type") ?? "").split(";")[0].trim();
        const size = Number(res.headers.get("content-length") ?? "0");
        if (digest) return { digest, mediaType, size };
        // Some registries omit the digest on HEAD: fall back to GET and hash the bytes.
        const m = await this.getManifest(repo, reference);
        return { digest: m.digest, mediaType: m.mediaType, size: m.size };
    }

    /** GET a manifest (or index); verifies the bytes against a digest reference. */
    async getManifest(repo: string, reference: string): Promise<FetchedManifest> {
        const res = await this.request("GET", `/v2/${repo}/manifests/${reference}`, {
            scope: `repository:${repo}:pull`,
            headers: { Accept: MANIFEST_ACCEPT },
            ok: [200],
            what: `GET manifest ${repo}:${reference}`,
        });
        const bytes = await this.readBody(res);
        const digest = sha256(bytes);
        if (reference.startsWith("sha256:") && digest !== reference) {
            throw new RegistryError(
                `GET manifest ${this.host}/${repo}@${reference}: the registry sent bytes whose digest is ${digest}. Fix: check the registry (or a proxy in front of it) is not rewriting manifests.`,
                "DIGEST_INVALID",
            );
        }
        let mediaType = (res.headers.get("content-type") ?? "").split(";")[0].trim();
        try {
            const parsed = JSON.parse(bytes.toString("utf8")) as { mediaType?: string };
            if (parsed.mediaType) mediaType = parsed.mediaType;
        } catch {
            throw new RegistryError(`GET manifest ${this.host}/${repo}:${reference}: not JSON.`, "MANIFEST_INVALID");
        }
        return { digest, mediaType, size: bytes.length, bytes };
    }

    /**
     * The OCI referrers API (distribution-spec 1.1): `GET /v2/<repo>/referrers/<digest>`. A
     * registry that has it answers 200 with an image index (empty when nothing refers to the
     * digest); one without it answers 404 (or another non-index answer): `undefined`, and the
     * caller uses the `sha256-<hex>` tag scheme. Decided by this probe, never by host name.
     */
    async getReferrers(repo: string, digest: string): Promise<{ manifests: Array<Record<string, unknown>> } | undefined> {
        const res = await this.request("GET", `/v2/${repo}/referrers/${digest}`, {
            scope: `repository:${repo}:pull`,
            headers: { Accept: "application/vnd.oci.image.index.v1+json" },
            ok: [200, 400, 404, 405],
            what: `GET referrers ${repo}@${digest}`,
        });
        const bytes = await this.readBody(res);
        if (res.status !== 200) return undefined;
        try {
            const idx = JSON.parse(bytes.toString("utf8")) as { manifests?: unknown };
            return Array.isArray(idx.manifests) ? { manifests: idx.manifests as Array<Record<string, unknown>> } : undefined;
        } catch {
            return undefined;
        }
    }

    /** Whether a repository exists (GET tags/list: NAME_UNKNOWN means it does not). */
    async repositoryExists(repo: string): Promise<boolean> {
        try {
            await this.request("GET", `/v2/${repo}/tags/list?n=1`, { scope: `repository:${repo}:pull`, ok: [200], what: `list tags of ${repo}` });
            return true;
        } catch (e) {
            if (e instanceof RegistryError && e.code === "NAME_UNKNOWN") return false;
            throw e;
        }
    }

    /** PUT a manifest under a tag or digest; returns its digest (checked against the registry's). */
    async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
        const res = await this.request("PUT", `/v2/${repo}/manifests/${reference}`, {
            scope: `repository:${repo}:pull,push`,
            headers: { "Content-Type": mediaType },
            body: bytes,
            ok: [200, 201, 202],
            what: `PUT manifest ${repo}:${reference}`,
        });
        const digest = sha256(bytes);
        const theirs = res.headers.get("docker-content-digest");
        if (theirs && theirs !== digest) {
            throw new RegistryError(`PUT manifest ${this.host}/${repo}:${reference}: registry reports digest ${theirs}, we sent ${digest}.`, "DIGEST_INVALID");
        }
        return digest;
    }

    /** HEAD a blob: its size, or undefined when missing. */
    async headBlob(repo: string, digest: string): Promise<number | undefined> {
        const res = await this.request("HEAD", `/v2/${repo}/blobs/${digest}`, {
            scope: `repository:${repo}:pull`,
            ok: [200, 404],
            what: `HEAD blob ${repo}@${digest}`,
        });
        if (res.status === 404) return undefined;
        return Number(res.headers.get("content-length") ?? "0");
    }

    /** GET a blob into memory, verifying its digest. (For small blobs: configs, test reads.) */
    async getBlob(repo: string, digest: string): Promise<Buffer> {
        const res = await this.request("GET", `/v2/${repo}/blobs/${digest}`, {
            scope: `repository:${repo}:pull`,
            ok: [200],
            what: `GET blob ${repo}@${digest}`,
            timeoutMs: 300_000,
        });
        const bytes = await this.readBody(res);
        if (sha256(bytes) !== digest) {
            throw new RegistryError(`GET blob ${this.host}/${repo}@${digest}: received bytes hash to ${sha256(bytes)}.`, "DIGEST_INVALID");
        }
        return bytes;
    }

    /**
     * Makes a blob exist in `repo`: nothing when it is there, a cross-repository mount from
     * `mountFrom` when given (falling back to an upload when the registry declines), else an
     * upload — monolithic up to `chunkSize`, chunked PATCHes above. A whole upload is retried on
     * connection loss (a fresh session: the registry discards the partial one).
     */
    async ensureBlob(repo: string, blob: BlobSource, mountFrom?: string): Promise<UploadResult> {
        if ((await this.headBlob(repo, blob.digest)) !== undefined) return "exists";
        let lastErr: unknown;
        for (let attempt = 1; attempt <= this.opts.attempts; attempt++) {
            try {
                return await this.uploadOnce(repo, blob, attempt === 1 ? mountFrom : undefined);
            } catch (e) {
                lastErr = e;
                const transient =
                    e instanceof RegistryError && (e.code === "UNREACHABLE" || e.code === "BLOB_UPLOAD_UNKNOWN" || (e.status ?? 0) >= 500 || e.status === 429);
                if (!transient || attempt === this.opts.attempts) throw e;
                this.opts.log?.(`upload of ${blob.digest.slice(0, 19)} to ${repo} interrupted (${e.message}); retrying (${attempt}/${this.opts.attempts})`);
                await sleep(this.backoff(attempt));
            }
        }
        throw lastErr;
    }

    private async uploadOnce(repo: string, blob: BlobSource, mountFrom?: string): Promise<UploadResult> {
        const scope = mountFrom && mountFrom !== repo ? `repository:${repo}:pull,push repository:${mountFrom}:pull` : `repository:${repo}:pull,push`;
        const query = mountFrom && mountFrom !== repo ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(mountFrom)}` : "";
        const start = await this.request("POST", `/v2/${repo}/blobs/uploads/${query}`, { scope, ok: [201, 202], what: `start upload to ${repo}` });
        if (start.status === 201) return "mounted";
        const location = this.location(start, `start upload to ${repo}`);
        if (!blob.data && !blob.file) {
            // A blob we only know by digest (a base layer): it could only be mounted, never sent.
            // Cancel the upload session the declined mount opened (best effort: errors ignored).
            await this.request("DELETE", location, { scope, ok: [202, 204, 404], noRetry: true, what: "cancel upload" }).catch(() => undefined);
            if (mountFrom && mountFrom !== repo) throw new MountDeclinedError(blob.digest, mountFrom, repo);
            throw new RegistryError(
                `blob ${blob.digest} is not in ${this.host}/${repo}; thinlayer never downloads base layers to re-upload them. Fix: push the base image to this registry (same host) first, or check it was not garbage-collected.`,
                "BLOB_UNKNOWN",
            );
        }
        if (blob.size <= this.opts.chunkSize) {
            const body = blob.data ?? fs.readFileSync(this.fileOf(blob));
            await this.request("PUT", withDigest(location, blob.digest), {
                scope,
                headers: { "Content-Type": "application/octet-stream" },
                body,
                ok: [201, 204],
                noRetry: true,
                what: `upload blob ${blob.digest.slice(0, 19)} to ${repo}`,
                timeoutMs: this.bodyTimeout(body.length),
            });
            return "uploaded";
        }
        // Larger blobs: one PATCH streaming the whole blob, read `chunkSize` at a time (the upload
        // `docker push` does; several PATCHes are what ECR mishandles), then the PUT with the digest.
        const stream = this.patchStream(repo, location, scope);
        const fd = blob.data ? undefined : fs.openSync(this.fileOf(blob), "r");
        try {
            for (let off = 0; off < blob.size; off += this.opts.chunkSize) {
                const len = Math.min(this.opts.chunkSize, blob.size - off);
                let chunk: Buffer;
                if (blob.data) chunk = blob.data.subarray(off, off + len);
                else {
                    chunk = Buffer.allocUnsafe(len);
                    if (fs.readSync(fd as number, chunk, 0, len, off) !== len) {
                        stream.abort();
                        throw new RegistryError(
                            `upload of ${blob.digest.slice(0, 19)} to ${repo}: ${this.fileOf(blob)} is shorter than its ${blob.size} bytes (changed while uploading).`,
                            "PROTOCOL",
                        );
                    }
                }
                if (!stream.write(chunk)) await stream.drained(); // at most a socket buffer ahead of the network
            }
        } catch (e) {
            stream.abort();
            throw e;
        } finally {
            if (fd !== undefined) fs.closeSync(fd);
        }
        return stream.finish(blob.digest, blob.size);
    }

    /**
     * Opens an upload of a blob whose bytes are still being produced (a layer being written): one
     * POST, then one PATCH carrying every `write` as it comes (the upload `docker push` does), and
     * at `finish` the PUT with the digest, known only then. Any failure rejects `finish` (the
     * registry drops the partial upload): send the finished blob again with ensureBlob.
     */
    async startBlobStream(repo: string): Promise<BlobStream> {
        const scope = `repository:${repo}:pull,push`;
        const start = await this.request("POST", `/v2/${repo}/blobs/uploads/`, { scope, ok: [202], what: `start upload to ${repo}` });
        return this.patchStream(repo, this.location(start, `start upload to ${repo}`), scope);
    }

    /**
     * Opens an upload session before its blob exists (an image config, known only once its layer is
     * written), so that the blob then takes one PUT instead of HEAD, POST and PUT. Sending a blob
     * the registry already has is harmless (a blob is its digest), so nothing is asked first.
     */
    async openUpload(repo: string): Promise<OpenUpload> {
        const scope = `repository:${repo}:pull,push`;
        const start = await this.request("POST", `/v2/${repo}/blobs/uploads/`, { scope, ok: [202], what: `start upload to ${repo}` });
        const location = this.location(start, `start upload to ${repo}`);
        return {
            put: async (digest, data) => {
                await this.request("PUT", withDigest(location, digest), {
                    scope,
                    headers: { "Content-Type": "application/octet-stream" },
                    body: data,
                    ok: [201, 204],
                    noRetry: true,
                    what: `upload blob ${digest.slice(0, 19)} to ${repo}`,
                    timeoutMs: this.bodyTimeout(data.length),
                });
                return "uploaded";
            },
            cancel: () => this.request("DELETE", location, { scope, ok: [202, 204, 404], noRetry: true, what: "cancel upload" }).then(() => undefined),
        };
    }

    /** One streamed PATCH into the upload session at `location`, closed by the PUT with the digest. */
    private patchStream(repo: string, location: string, scope: string): BlobStream & { drained(): Promise<void> } {
        // (The session's Location may name another origin: credentials go only to the registry's own.)
        const headers: Record<string, string> = { "Content-Type": "application/octet-stream" };
        const auth = new URL(location).origin === new URL(this.baseUrl).origin ? this.authFor(scope) : undefined;
        if (auth) headers.Authorization = auth;
        this.stats.requests++;
        const patch = httpStream(location, { method: "PATCH", headers, timeoutMs: this.opts.timeoutMs });
        let sent = 0;
        return {
            write: (chunk) => {
                sent += chunk.length;
                const before = patch.written;
                const more = patch.write(chunk);
                this.stats.bytesUploaded += patch.written - before; // not what a failed stream drops
                return more;
            },
            drained: () => patch.drained(),
            finish: async (digest, size) => {
                const what = `streamed upload of ${digest.slice(0, 19)} to ${repo}`;
                if (sent !== size) {
                    patch.abort();
                    throw new RegistryError(`${what} on ${this.host}: ${sent} bytes streamed for a blob of ${size}.`, "PROTOCOL");
                }
                let res: HttpResponse;
                try {
                    res = await patch.end();
                } catch (e) {
                    throw new RegistryError(`${what} on ${this.host}: ${describeFetchError(e)}.`, "UNREACHABLE");
                }
                // 202 by the spec; ECR answers a PATCH with 201.
                if (res.status !== 202 && res.status !== 201) throw await this.errorFor(res, what, "PATCH");
                const next = this.location(res, what);
                await this.request("PUT", withDigest(next, digest), {
                    scope,
                    ok: [201, 204],
                    noRetry: true,
                    what,
                });
                return "uploaded";
            },
            abort: () => patch.abort(),
        };
    }

    private fileOf(blob: BlobSource): string {
        if (!blob.file) throw new Error(`blob ${blob.digest} has neither data nor file`);
        return blob.file;
    }

    private bodyTimeout(bytes: number): number {
        // Allow at least 1 MiB/s on top of the base timeout.
        return this.opts.timeoutMs + Math.ceil(bytes / 1024);
    }

    private location(res: HttpResponse, what: string): string {
        const loc = res.headers.get("location");
        if (!loc) throw new RegistryError(`${what} on ${this.host}: the registry sent no Location header.`, "PROTOCOL");
        return new URL(loc, this.baseUrl + "/").toString();
    }

    private backoff(attempt: number): number {
        return this.opts.backoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
    }

    private async readBody(res: HttpResponse): Promise<Buffer> {
        this.stats.bytesDownloaded += res.body.length;
        return res.body;
    }

    /** Authorization header to send for a scope, if we already have one. */
    private authFor(scope: string | undefined): string | undefined {
        if (this.auth.challenge?.scheme === "bearer") return this.auth.tokens.get(scope ?? "");
        return this.auth.basicHeader;
    }

    /**
     * One registry call: absolute URL or /v2 path; retries 429/5xx/connection errors with backoff;
     * answers a 401 challenge once (Basic or Bearer) and then raises with the credential source.
     */
    private async request(method: string, pathOrUrl: string, o: RequestOptions): Promise<HttpResponse> {
        const url = pathOrUrl.startsWith("http") ? pathOrUrl : this.baseUrl + pathOrUrl;
        const sameOrigin = new URL(url).origin === new URL(this.baseUrl).origin;
        const display = `${method} ${new URL(url).pathname}`;
        let challenged = false;
        for (let attempt = 1; ; attempt++) {
            const headers: Record<string, string> = { ...(o.headers ?? {}) };
            const auth = sameOrigin ? this.authFor(o.scope) : undefined;
            if (auth) headers.Authorization = auth;
            let res: HttpResponse;
            try {
                this.stats.requests++;
                res = await httpRequest(url, { method, headers, body: o.body, timeoutMs: o.timeoutMs ?? this.opts.timeoutMs });
                if (o.body) this.stats.bytesUploaded += o.body.length;
            } catch (e) {
                if (o.body) this.stats.bytesUploaded += o.body.length;
                const why = describeFetchError(e);
                if (attempt < this.opts.attempts && !o.noRetry) {
                    this.opts.log?.(`${display} on ${this.host}: ${why}; retrying`);
                    await sleep(this.backoff(attempt));
                    continue;
                }
                throw new RegistryError(
                    `registry ${this.host} unreachable (${o.what}: ${why}, after ${attempt} attempt${attempt > 1 ? "s" : ""}). Fix: check the host and port, that the registry is running, and network access (HTTPS is used for every non-loopback host).`,
                    "UNREACHABLE",
                );
            }
            if (res.status === 401 && !challenged) {
                challenged = true;
                await this.answerChallenge(res.headers.get("www-authenticate") ?? "", o.scope, o.what);
                attempt--;
                continue;
            }
            if ((res.status === 429 || res.status >= 500) && attempt < this.opts.attempts && !o.noRetry && !o.ok.includes(res.status)) {
                const ra = Number(res.headers.get("retry-after"));
                await sleep(Number.isFinite(ra) && ra > 0 ? Math.min(ra * 1000, 10_000) : this.backoff(attempt));
                continue;
            }
            if (o.ok.includes(res.status)) return res;
            throw await this.errorFor(res, o.what, method);
        }
    }

    private async answerChallenge(header: string, scope: string | undefined, what: string): Promise<void> {
        const creds = await this.credentials();
        const ch = parseChallenge(header);
        this.auth.challenge = ch;
        if (ch.scheme === "basic") {
            if (!hasBasic(creds)) {
                throw new RegistryError(
                    `${what} on ${this.host}: 401 Unauthorized; the registry wants a username and password and credential source ${creds.source} gave none. Fix: docker login ${this.host} (or set $DOCKER_CONFIG to a config.json with an auths entry for ${this.host}).`,
                    "UNAUTHORIZED",
                    401,
                );
            }
            this.auth.basicHeader = "Basic " + Buffer.from(`${creds.username}:${creds.password}`).toString("base64");
            return;
        }
        if (ch.scheme === "bearer") {
            const realm = ch.params.realm;
            if (!realm) throw new RegistryError(`${what} on ${this.host}: Bearer challenge without a realm.`, "PROTOCOL", 401);
            const u = new URL(realm);
            if (ch.params.service) u.searchParams.set("service", ch.params.service);
            for (const s of (scope ?? ch.params.scope ?? "").split(" ").filter(Boolean)) u.searchParams.append("scope", s);
            const headers: Record<string, string> = {};
            if (hasBasic(creds)) headers.Authorization = "Basic " + Buffer.from(`${creds.username}:${creds.password}`).toString("base64");
            let res: HttpResponse;
            try {
                res = await httpRequest(u.toString(), { method: "GET", headers, timeoutMs: this.opts.timeoutMs });
            } catch (e) {
                throw new RegistryError(`token service ${u.host} for ${this.host} unreachable (${describeFetchError(e)}).`, "UNREACHABLE");
            }
            if (!res.ok) {
                throw new RegistryError(
                    `${what} on ${this.host}: token service ${u.origin}${u.pathname} answered ${res.status}; credential source tried: ${creds.source}. Fix: log in to ${this.host} with an account that may ${scopeVerb(scope)} this repository.`,
                    res.status === 403 ? "DENIED" : "UNAUTHORIZED",
                    res.status,
                );
            }
            let body: { token?: string; access_token?: string };
            try {
                body = res.json() as typeof body;
            } catch {
                throw new RegistryError(`token service for ${this.host} answered ${res.status} with a body that is not JSON.`, "PROTOCOL");
            }
            const token = body.token ?? body.access_token;
            if (!token) throw new RegistryError(`token service for ${this.host} returned no token.`, "PROTOCOL");
            this.auth.tokens.set(scope ?? "", `Bearer ${token}`);
            return;
        }
        throw new RegistryError(`${what} on ${this.host}: 401 with an unsupported challenge scheme ${JSON.stringify(ch.scheme)}.`, "UNAUTHORIZED", 401);
    }

    private async errorFor(res: HttpResponse, what: string, method: string): Promise<RegistryError> {
        let code = "";
        let message = "";
        if (method !== "HEAD") {
            try {
                const body = res.json() as { errors?: Array<{ code?: string; message?: string }> };
                code = body.errors?.[0]?.code ?? "";
                message = body.errors?.[0]?.message ?? "";
            } catch {
                /* not a registry error body */
            }
        }
        const src = this.auth.creds?.source ?? "anonymous";
        const where = `${what} on ${this.host}`;
        if (res.status === 401) {
            return new RegistryError(
                `${where}: 401 Unauthorized with credential source ${src}. Fix: refresh the login for ${this.host} (docker login / aws ecr get-login-password), or use an account with access.`,
                "UNAUTHORIZED",
                401,
            );
        }
        if (res.status === 403 || code === "DENIED") {
            return new RegistryError(
                `${where}: 403 Forbidden (${code || "DENIED"}) with credential source ${src}. Fix: grant this identity pull/push on the repository.`,
                "DENIED",
                res.status,
            );
        }
        if (code === "NAME_UNKNOWN") {
            return new RegistryError(
                `${where}: repository does not exist (NAME_UNKNOWN). Fix: create the repository (repositoryMode: create) or correct the repository name.`,
                code,
                res.status,
            );
        }
        if (code === "DIGEST_INVALID" || (code === "BLOB_UPLOAD_INVALID" && /digest/i.test(message))) {
            return new RegistryError(
                `${where}: the registry computed a different digest for the uploaded bytes (${code}: ${message}). Fix: the local blob changed or was corrupted in transit; rerun, and check any proxy in between.`,
                "DIGEST_INVALID",
                res.status,
            );
        }
        if (code === "MANIFEST_BLOB_UNKNOWN" || code === "BLOB_UNKNOWN") {
            return new RegistryError(
                `${where}: the registry lacks a blob the manifest references (${code}). Fix: rerun; blobs are uploaded before the manifest.`,
                code,
                res.status,
            );
        }
        return new RegistryError(
            `${where}: HTTP ${res.status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}.`,
            code || `HTTP_${res.status}`,
            res.status,
        );
    }
}

function scopeVerb(scope: string | undefined): string {
    return scope?.includes("push") ? "push to" : "pull from";
}

function describeFetchError(e: unknown): string {
    if (e instanceof HttpError) return e.code === "TIMEOUT" ? "timed out" : e.code;
    return e instanceof Error ? e.message : String(e);
}
