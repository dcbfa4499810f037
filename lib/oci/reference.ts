/**
 * Image references: `host[:port]/repo[:tag][@sha256:…]`. Only the forms thinlayer writes and reads
 * (an explicit registry host is required: there is no implicit Docker Hub here).
 */
import { inputError } from "../errors";
import { DIGEST, repositoryNameRule, TAG } from "../rules";

export interface ImageRef {
    /** Registry host, with port when given: `123.dkr.ecr.eu-west-1.amazonaws.com`, `127.0.0.1:5000`. */
    host: string;
    /** Repository path inside the registry: `thinlayer/app`. */
    repository: string;
    tag?: string;
    digest?: string;
}

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
        if (!DIGEST.test(digest)) throw bad("give the digest as sha256:<64 lowercase hex>");
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
        if (!TAG.test(tag)) throw bad(`use ${TAG.allowed}`);
    }
    if (!/^[A-Za-z0-9.-]+(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/.test(host)) throw bad("use a registry host name or IP, optionally with :port");
    const repositoryName = repositoryNameRule(parseEcrHost(host) !== undefined);
    if (!repositoryName.test(repository)) throw bad(`use ${repositoryName.allowed}, such as thinlayer/app`);
    return { host, repository, tag, digest };
}

/** Parses `host/repo` (a repository, no tag or digest). */
export function parseRepository(repo: string, what = "--repository"): { host: string; repository: string } {
    const r = parseImageRef(repo, what);
    if (r.tag !== undefined || r.digest !== undefined) {
        throw inputError({
            input: what,
            value: JSON.stringify(repo),
            allowed: "host[:port]/repository without a tag or digest",
            fix: "drop the :tag / @digest part",
        });
    }
    return { host: r.host, repository: r.repository };
}

/** Host part without the port, brackets removed. */
function hostName(host: string): string {
    if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
    const i = host.lastIndexOf(":");
    return i >= 0 ? host.slice(0, i) : host;
}

/** localhost, 127.0.0.0/8 and ::1: the only hosts spoken to over plain HTTP. */
export function isLoopbackHost(host: string): boolean {
    const h = hostName(host).toLowerCase();
    return h === "localhost" || h === "::1" || /^127(?:\.\d{1,3}){3}$/.test(h);
}

/** Whether `registry` (thinlayer:registry, a host) is ECR: "" (the account's ECR) or an ECR host. */
export function isEcrRegistry(registry: string): boolean {
    return registry === "" || parseEcrHost(registry) !== undefined;
}

/** A private ECR registry endpoint, as its host name spells it. */
export interface EcrHost {
    /** The 12-digit account id (GetAuthorizationToken's registryId, DescribeImages' registryId). */
    registryId: string;
    region: string;
    /** `dkr.ecr-fips` / `dkr-ecr-fips`: the FIPS 140 endpoint. */
    fips: boolean;
    /** `<acct>.dkr-ecr[-fips].<region>.on.aws`: the IPv4/IPv6 endpoint. */
    dualStack: boolean;
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;
const ECR_DUAL_STACK_HOST = /^(\d{12})\.dkr-ecr(-fips)?\.([a-z0-9-]+)\.on\.aws$/;

/**
 * The one ECR host check: `<acct>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` or the dual-stack
 * `<acct>.dkr-ecr[-fips].<region>.on.aws` (port ignored, any case), else undefined. The CLI's
 * credentials, the program's repositories and its rollback-pin lookup all ask this, so a host is
 * ECR for all of them or for none.
 */
export function parseEcrHost(host: string): EcrHost | undefined {
    const name = hostName(host).toLowerCase();
    const m = ECR_HOST.exec(name);
    const d = m === null ? ECR_DUAL_STACK_HOST.exec(name) : null;
    const hit = m ?? d;
    return hit === null ? undefined : { registryId: hit[1], region: hit[3], fips: hit[2] !== undefined, dualStack: d !== null };
}
