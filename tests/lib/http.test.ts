// The registry client's HTTP (lib/oci/http.ts) against real local servers: redirects as fetch
// follows them, the timeout over the whole exchange, connection errors by code, keep-alive reuse.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { HttpError, httpRequest, httpStream } from "../../lib/oci/http";

interface Seen {
    method: string;
    url: string;
    auth?: string;
    body: string;
    port: number;
}

/** A server answering with `handle`, recording every request it sees (and the client's port: the connection). */
async function server(
    handle: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
    const seen: Seen[] = [];
    const s = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks).toString();
            seen.push({ method: req.method ?? "", url: req.url ?? "", auth: req.headers.authorization, body, port: req.socket.remotePort ?? 0 });
            handle(req, res, body);
        });
    });
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    return {
        url,
        seen,
        close: () =>
            new Promise<void>((r) => {
                s.closeAllConnections();
                s.close(() => r());
            }),
    };
}

/** A raw TCP server (no HTTP parsing) handing each connection to `onSocket`; `close` drops them all. */
async function rawServer(onSocket: (sock: net.Socket) => void): Promise<{ url: string; close: () => void }> {
    const socks: net.Socket[] = [];
    const srv = net.createServer((sock) => {
        socks.push(sock);
        sock.on("error", () => undefined);
        onSocket(sock);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    return {
        url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
        close: () => {
            for (const x of socks) x.destroy();
            srv.close();
        },
    };
}

test("redirects: 307 keeps method, body and (same origin) Authorization; another origin gets no Authorization", async () => {
    const other = await server((_req, res) => res.end("from other"));
    const first = await server((req, res) => {
        if (req.url === "/start") {
            res.writeHead(307, { Location: "/same" }).end();
        } else if (req.url === "/same") {
            res.writeHead(302, { Location: `${other.url}/blob` }).end();
        } else res.writeHead(404).end();
    });
    try {
        const r = await httpRequest(`${first.url}/start`, {
            method: "PUT",
            headers: { Authorization: "Bearer t0ken" },
            body: Buffer.from("payload"),
            timeoutMs: 5000,
        });
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), "from other");
        assert.equal(r.url, `${other.url}/blob`);
        assert.deepEqual(
            first.seen.map((s) => [s.method, s.url, s.auth, s.body]),
            [
                ["PUT", "/start", "Bearer t0ken", "payload"],
                ["PUT", "/same", "Bearer t0ken", "payload"],
            ],
        );
        // 302 after a PUT keeps the method (fetch rewrites only POST), and the token stays home.
        assert.deepEqual(
            other.seen.map((s) => [s.method, s.url, s.auth, s.body]),
            [["PUT", "/blob", undefined, "payload"]],
        );
    } finally {
        await first.close();
        await other.close();
    }
});

test("redirects: 303, and 302 after a POST, become a GET without a body; a redirect loop stops", async () => {
    const s = await server((req, res) => {
        if (req.url === "/see-other") res.writeHead(303, { Location: "/done" }).end();
        else if (req.url === "/found") res.writeHead(302, { Location: "/done" }).end();
        else if (req.url === "/loop") res.writeHead(301, { Location: "/loop" }).end();
        else res.end(`${req.method} done`);
    });
    try {
        const a = await httpRequest(`${s.url}/see-other`, { method: "PUT", body: Buffer.from("x"), timeoutMs: 5000 });
        assert.equal(a.body.toString(), "GET done");
        const b = await httpRequest(`${s.url}/found`, { method: "POST", body: Buffer.from("x"), timeoutMs: 5000 });
        assert.equal(b.body.toString(), "GET done");
        assert.deepEqual(
            s.seen.filter((x) => x.url === "/done").map((x) => [x.method, x.body]),
            [
                ["GET", ""],
                ["GET", ""],
            ],
        );
        await assert.rejects(
            httpRequest(`${s.url}/loop`, { method: "GET", timeoutMs: 5000 }),
            (e: unknown) => e instanceof HttpError && e.code === "EREDIRECT",
        );
    } finally {
        await s.close();
    }
});

test("one timeout for the whole exchange (a body that stalls), connection errors by code", async () => {
    const s = await server((_req, res) => {
        res.writeHead(200, { "Content-Length": "10" });
        res.write("12345"); // and never the rest
    });
    try {
        const t0 = Date.now();
        await assert.rejects(
            httpRequest(`${s.url}/stall`, { method: "GET", timeoutMs: 300 }),
            (e: unknown) => e instanceof HttpError && e.code === "TIMEOUT" && e.name === "TimeoutError",
        );
        assert.ok(Date.now() - t0 < 5000);
    } finally {
        await s.close();
    }
    // The closed server's port: nothing listens there now.
    await assert.rejects(httpRequest(s.url, { method: "GET", timeoutMs: 5000 }), (e: unknown) => e instanceof HttpError && e.code === "ECONNREFUSED");
});

test("headers are case-insensitive; consecutive requests reuse one keep-alive connection", async () => {
    // With a Content-Length, as registries send (Node's server closes a HEAD's connection without one).
    const s = await server((_req, res) => res.writeHead(200, { "Docker-Content-Digest": "sha256:abc", "Content-Length": "2" }).end("{}"));
    try {
        const a = await httpRequest(`${s.url}/a`, { method: "HEAD", timeoutMs: 5000 });
        const b = await httpRequest(`${s.url}/b`, { method: "GET", timeoutMs: 5000 });
        assert.equal(a.headers.get("docker-content-digest"), "sha256:abc");
        assert.equal(b.headers.get("DOCKER-CONTENT-DIGEST"), "sha256:abc");
        assert.equal(a.headers.get("x-missing"), null);
        assert.deepEqual(b.json(), {});
        assert.equal(s.seen.length, 2);
        assert.equal(s.seen[0].port, s.seen[1].port, "the second request came on the first one's connection");
    } finally {
        await s.close();
    }
});

test("a streamed body the server answers early (401) and then stops reading: drained() and end() return the answer, no hang", async () => {
    const srv = await rawServer((sock) => {
        sock.once("data", () => {
            sock.write("HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}");
            sock.pause(); // and reads nothing more: the client's writes back up
        });
    });
    try {
        const s = httpStream(`${srv.url}/up`, { method: "PATCH", timeoutMs: 20_000 });
        const chunk = Buffer.alloc(1 << 20);
        const t0 = Date.now();
        for (let i = 0; i < 64; i++) if (!s.write(chunk)) await s.drained();
        const r = await s.end();
        assert.equal(r.status, 401);
        assert.ok(Date.now() - t0 < 10_000, `returned after ${Date.now() - t0} ms`);
        // After the answer a write is dropped, and not counted as sent.
        const written = s.written;
        assert.ok(written > 0 && written <= 64 << 20);
        s.write(chunk);
        assert.equal(s.written, written);
    } finally {
        srv.close();
    }
});

test("a redirect to a malformed Location rejects with EREDIRECT (no throw out of the response callback)", async () => {
    const s = await server((_req, res) => res.writeHead(302, { Location: "http://[::1" }).end());
    try {
        await assert.rejects(
            httpRequest(`${s.url}/bad`, { method: "GET", timeoutMs: 5000 }),
            (e: unknown) => e instanceof HttpError && e.code === "EREDIRECT" && /malformed Location/.test(e.message),
        );
    } finally {
        await s.close();
    }
});

test("a streamed body's timeout restarts when its backlog drains: a slow reader is progress, a silent one is not", async () => {
    // A server that reads nothing for 600 ms, then everything; it answers once the chunked body ends.
    const srv = await rawServer((sock) => {
        sock.pause();
        setTimeout(() => sock.resume(), 600);
        let tail = "";
        sock.on("data", (c: Buffer) => {
            tail = (tail + c.toString("latin1")).slice(-5);
            if (tail === "0\r\n\r\n") sock.end("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        });
    });
    const url = `${srv.url}/up`;
    try {
        // 32 MiB (more than loopback's socket buffers) waits for the reader; the drain, at ~600 ms,
        // restarts the 1500 ms timeout, so a producer pausing 1000 ms after it is still in time
        // (timed from the first write alone it would fail at 1500 ms, during the pause).
        const s = httpStream(url, { method: "PATCH", timeoutMs: 1500 });
        assert.equal(s.write(Buffer.alloc(32 << 20)), false, "the write backs up");
        await s.drained();
        await new Promise((r) => setTimeout(r, 1000));
        s.write(Buffer.from("x"));
        assert.equal((await s.end()).status, 202);
        // Without any progress the timeout still fires.
        const silent = httpStream(url, { method: "PATCH", timeoutMs: 300 });
        silent.write(Buffer.from("x"));
        await new Promise((r) => setTimeout(r, 500));
        await assert.rejects(silent.end(), (e: unknown) => e instanceof HttpError && e.code === "TIMEOUT");
    } finally {
        srv.close();
    }
});
