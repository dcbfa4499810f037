/**
 * Image references: `host[:port]/repo[:tag][@sha256:…]`. Only the forms thinlayer writes and reads
 * (an explicit registry host is required: there is no implicit Docker Hub here).
 */
import { inputError } from "../errors";

export interface ImageRef {
    /** Registry host, with port when given: `123.dkr.ecr.eu-west-1.amazonaws.com`, `127.0.0.1:5000`. */
    host: string;
    /** Repository path inside the registry: `thinlayer/app`. */
    repository: string;
    tag?: string;
    digest?: string;
}

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Parses `host/repo[:tag][@digest]`; `what` names the input in the error. */
export function parseImageRef(ref: string, what = "image reference"): ImageRef {
    const bad = (why: string) =>
        inputError({
            input: what,
            value: JSON.stringify(ref),
            allowed: "host[:port]/repository[:tag][@sha256:<64 hex>] with an explicit registry host",
            fix: why,
        });
    let rest = ref;
    let digest: string | undefined;
    const at = rest.indexOf("@");
    if (at >= 0) {
        digest = rest.slice(at + 1);
        rest = rest.slice(0, at);
        if (!DIGEST_RE.test(digest)) throw bad("give the digest as sha256:<64 lowercase hex>");
    }
    const slash = rest.indexOf("/");
    if (slash <= 0) throw bad("prefix the repository with its registry host, e.g. 127.0.0.1:5000/thinlayer/app");
    const host = rest.slice(0, slash);
    let repository = rest.slice(slash + 1);
    let tag: string | undefined;
    const colon = repository.lastIndexOf(":");
    if (colon >= 0) {
        tag = repository.slice(colon + 1);
        repository = repository.slice(0, colon);
        if (!TAG_RE.test(tag)) throw bad("use a tag of letters, digits, '_', '.', '-' (at most 128)");
    }
    if (!/^[A-Za-z0-9.-]+(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/.test(host)) throw bad("use a registry host name or IP, optionally with :port");
    if (!REPO_RE.test(repository)) throw bad("use a lowercase repository path such as thinlayer/app");
    return { host, repository, tag, digest };
}

/** Parses `host/repo` (a repository, no tag or digest). */
export function parseRepository(repo: string, what = "--repository"): { host: string; repository: string } {
    const r = parseImageRef(repo, what);
    if (r.tag !== undefined || r.digest !== undefined) {
        throw inputError({ input: what, value: JSON.stringify(repo), allowed: "host[:port]/repository without a tag or digest", fix: "drop the :tag / @digest part" });
    }
    return { host: r.host, repository: r.repository };
}

export function formatRef(r: ImageRef): string {
    return `${r.host}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}

/** Host part without the port, brackets removed. */
export function hostName(host: string): string {
    if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
    const i = host.lastIndexOf(":");
    return i >= 0 ? host.slice(0, i) : host;
}

/** localhost, 127.0.0.0/8 and ::1: the only hosts spoken to over plain HTTP. */
export function isLoopbackHost(host: string): boolean {
    const h = hostName(host).toLowerCase();
    return h === "localhost" || h === "::1" || /^127(?:\.\d{1,3}){3}$/.test(h);
}

/** `*.dkr.ecr.<region>.amazonaws.com[.cn]` → region, else undefined. */
export function ecrRegion(host: string): string | undefined {
    const m = /^\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(hostName(host).toLowerCase());
    return m ? m[1] : undefined;
}
