/**
 * The registry client's HTTP: node:http / node:https with keep-alive, the few parts of `fetch` it
 * used (redirects, a timeout, the response as bytes), and nothing else. Not `fetch`: Node loads
 * its fetch (undici) on first use, about 40-100 ms of every CLI run before the first request
 * (measured with `node -e` here: fetch 0.31-0.40 s, node:http 0.23-0.26 s, nothing 0.23 s).
 *
 * The whole exchange, body included, runs under one timeout; the body is read whole (registry
 * answers are manifests, configs, tokens and errors; layers are never downloaded).
 */
import * as http from "node:http";
import type * as Https from "node:https";
import { handedOverSecureContext } from "./trust";

export interface HttpInit {
    method: string;
    headers?: Record<string, string>;
    body?: Buffer;
    /** For the whole exchange, redirects and body included. */
    timeoutMs: number;
}

/** An answer: status, headers (case-insensitive get) and the body bytes. */
export class HttpResponse {
    constructor(
        readonly status: number,
        private readonly head: http.IncomingHttpHeaders,
        readonly body: Buffer,
        /** The URL that answered (after redirects). */
        readonly url: string,
    ) {}

    get ok(): boolean {
        return this.status >= 200 && this.status < 300;
    }

    readonly headers = {
        get: (name: string): string | null => {
            const v = this.head[name.toLowerCase()];
            if (v === undefined) return null;
            return Array.isArray(v) ? v.join(", ") : v;
        },
    };

    json(): unknown {
        return JSON.parse(this.body.toString("utf8"));
    }
}

/** A failed exchange (no HTTP answer): `code` is the system error (ECONNREFUSED, ECONNRESET, …) or TIMEOUT. */
export class HttpError extends Error {
    constructor(
        message: string,
        readonly code: string,
    ) {
        super(message);
        this.name = code === "TIMEOUT" ? "TimeoutError" : "HttpError";
    }
}

// One pool per protocol for the process: connections are reused across requests (and clients).
// Idle sockets do not keep the process alive (Node's Agent unrefs them). The HTTPS pool is made on
// its first request: its trust may include CA certificates handed over to be parsed only then
// (./trust), and every connection shares the one secure context.
const httpAgent = new http.Agent({ keepAlive: true });
let httpsAgent: Https.Agent | undefined;

/** node:https (and node:tls under it), loaded on the first HTTPS request: a loopback registry never pays for them (~4 ms). */
function https(): typeof Https {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("node:https") as typeof Https;
}

function agentFor(protocol: string): http.Agent | undefined {
    if (protocol === "http:") return httpAgent;
    if (protocol !== "https:") return undefined;
    if (httpsAgent === undefined) {
        const secureContext = handedOverSecureContext();
        httpsAgent = new (https().Agent)({ keepAlive: true, ...(secureContext ? { secureContext } : {}) });
    }
    return httpsAgent;
}

const REDIRECTS = 10;

/** One request, following redirects the way fetch does (Authorization dropped when the origin changes). */
export function httpRequest(url: string, init: HttpInit): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
        let settled = false;
        let current: http.ClientRequest | undefined;
        const fail = (e: Error) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            current?.destroy();
            reject(e);
        };
        const timer = setTimeout(() => fail(new HttpError(`timed out after ${init.timeoutMs} ms`, "TIMEOUT")), init.timeoutMs);
        const send = (target: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, hops: number) => {
            const agent = agentFor(target.protocol);
            if (agent === undefined) return fail(new HttpError(`unsupported URL scheme ${target.protocol}`, "EPROTO"));
            const h: Record<string, string> = { ...headers };
            if (body !== undefined) h["Content-Length"] = String(body.length);
            const mod = target.protocol === "https:" ? https() : http;
            const req = mod.request(target, { method, headers: h, agent }, (res) => {
                const status = res.statusCode ?? 0;
                const location = res.headers.location;
                if ([301, 302, 303, 307, 308].includes(status) && location !== undefined) {
                    res.resume();
                    if (hops >= REDIRECTS) return fail(new HttpError(`more than ${REDIRECTS} redirects`, "EREDIRECT"));
                    let next: URL;
                    try {
                        next = new URL(location, target);
                    } catch {
                        return fail(new HttpError(`redirect to a malformed Location ${JSON.stringify(location)}`, "EREDIRECT"));
                    }
                    const nextHeaders = { ...headers };
                    if (next.origin !== target.origin) {
                        for (const k of Object.keys(nextHeaders)) if (k.toLowerCase() === "authorization") delete nextHeaders[k];
                    }
                    // fetch's rules: 303 (and 301/302 after a POST) become a GET without a body.
                    const toGet = status === 303 || ((status === 301 || status === 302) && method === "POST");
                    return send(next, toGet && method !== "HEAD" ? "GET" : method, nextHeaders, toGet ? undefined : body, hops + 1);
                }
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("error", (e: NodeJS.ErrnoException) => fail(new HttpError(e.message, e.code ?? "ECONNRESET")));
                res.on("end", () => {
                    if (settled) return;
                    settled = true;
                    clearTimeout(timer);
                    resolve(new HttpResponse(status, res.headers, Buffer.concat(chunks), target.toString()));
                });
            });
            current = req;
            req.on("error", (e: NodeJS.ErrnoException) => fail(new HttpError(e.message, e.code ?? "ECONNRESET")));
            req.end(body);
        };
        try {
            send(new URL(url), init.method, init.headers ?? {}, init.body, 0);
        } catch (e) {
            fail(new HttpError((e as Error).message, "EINVAL"));
        }
    });
}

/**
 * A request whose body is written as it is produced (chunked transfer encoding): `write` each
 * piece, then `end()` for the answer. Same redirects-free exchange and timeout rules as
 * httpRequest, except that the timeout restarts with every write (a slow producer is not a dead
 * connection). For one PATCH of a whole blob (the upload Docker itself does).
 */
export interface HttpStream {
    /** Queues a piece; false when the socket's buffer is full (await drained() before the next, to bound memory). */
    write(chunk: Buffer): boolean;
    /** Resolves once the queued pieces have gone to the socket (or the exchange failed). */
    drained(): Promise<void>;
    end(): Promise<HttpResponse>;
    /** Gives up: the connection is dropped (the registry discards the partial upload). */
    abort(): void;
    /** Bytes handed to the connection so far (a write after a failure or an early answer is dropped, not counted). */
    readonly written: number;
}

export function httpStream(url: string, init: Omit<HttpInit, "body">): HttpStream {
    const target = new URL(url);
    const agent = agentFor(target.protocol);
    if (agent === undefined) throw new HttpError(`unsupported URL scheme ${target.protocol}`, "EPROTO");
    const mod = target.protocol === "https:" ? https() : http;
    let timer: NodeJS.Timeout | undefined;
    let failure: Error | undefined;
    let settle: { resolve: (r: HttpResponse) => void; reject: (e: Error) => void } | undefined;
    let answer: HttpResponse | undefined;
    let ended = false;
    // drained() waiters: released by 'drain', or by an answer or failure (a registry that answers
    // early, e.g. 401, and stops reading would otherwise never drain).
    const waiters: Array<() => void> = [];
    const release = () => {
        for (const w of waiters.splice(0)) w();
    };
    const fail = (e: Error) => {
        if (failure !== undefined || answer !== undefined) return;
        failure = e;
        clearTimeout(timer);
        req.destroy();
        release();
        settle?.reject(e);
    };
    const arm = (extraMs = 0) => {
        clearTimeout(timer);
        timer = setTimeout(() => fail(new HttpError(`timed out after ${init.timeoutMs + extraMs} ms`, "TIMEOUT")), init.timeoutMs + extraMs);
    };
    const req = mod.request(target, { method: init.method, headers: { ...(init.headers ?? {}), "Transfer-Encoding": "chunked" }, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (e: NodeJS.ErrnoException) => fail(new HttpError(e.message, e.code ?? "ECONNRESET")));
        res.on("end", () => {
            if (failure !== undefined) return;
            clearTimeout(timer);
            answer = new HttpResponse(res.statusCode ?? 0, res.headers, Buffer.concat(chunks), target.toString());
            if (!ended) req.destroy(); // answered before the body was done: the connection cannot be reused
            release();
            settle?.resolve(answer);
        });
    });
    req.on("error", (e: NodeJS.ErrnoException) => fail(new HttpError(e.message, e.code ?? "ECONNRESET")));
    // Progress, not only new writes, restarts the timeout: a backlog draining to a slow link is alive.
    req.on("drain", () => {
        if (failure === undefined && answer === undefined) arm();
    });
    arm();
    let written = 0;
    return {
        get written() {
            return written;
        },
        write(chunk) {
            if (failure !== undefined || answer !== undefined) return true;
            arm();
            written += chunk.length;
            return req.write(chunk);
        },
        drained() {
            if (failure !== undefined || answer !== undefined || !req.writableNeedDrain) return Promise.resolve();
            return new Promise<void>((resolve) => {
                const done = () => {
                    req.off("drain", done);
                    req.off("close", done);
                    resolve();
                };
                waiters.push(done);
                req.on("drain", done);
                req.on("close", done);
            });
        },
        end() {
            return new Promise<HttpResponse>((resolve, reject) => {
                if (failure !== undefined) return reject(failure);
                if (answer !== undefined) return resolve(answer); // answered early (an error status)
                settle = { resolve, reject };
                ended = true;
                // The unsent backlog gets time on top, at 1 MiB/s or better (as whole-blob uploads do).
                arm(Math.ceil(req.writableLength / 1024));
                req.end();
            });
        },
        abort() {
            fail(new HttpError("aborted", "ABORTED"));
        },
    };
}
