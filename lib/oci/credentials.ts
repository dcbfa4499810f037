/**
 * Where registry credentials come from, in order: an ECR token (GetAuthorizationToken with the
 * ambient AWS credentials) for an ECR host (`parseEcrHost`), else the `auths` entry of a
 * Docker config.json ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), else anonymous.
 * credHelpers/credsStore are not run (they would execute arbitrary helper binaries); a config that
 * only names one is reported as such in auth errors. Secrets stay in this object: `source` is the
 * only thing that is ever printed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseEcrHost, type EcrHost } from "./reference";

export interface Credentials {
    /** Printable description of where the credentials came from (never the secret itself). */
    source: string;
    username?: string;
    password?: string;
    /** An identity token (config.json `identitytoken`): used as a refresh token for Bearer realms. */
    identityToken?: string;
}

/** The Docker config.json path consulted: $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
    const dir = env.DOCKER_CONFIG ?? path.join(os.homedir(), ".docker");
    return path.join(dir, "config.json");
}

interface DockerConfigFile {
    auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
    credHelpers?: Record<string, string>;
    credsStore?: string;
}

/** Keys under which a host may appear in `auths` (Docker writes several spellings). */
function authKeys(host: string): string[] {
    return [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`, `${host}/v1/`, `${host}/v2/`];
}

/** Credentials for `host` from a Docker config.json, or undefined (file absent or no entry). */
export function fromDockerConfig(host: string, file = dockerConfigPath()): Credentials | undefined {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch {
        return undefined;
    }
    let cfg: DockerConfigFile;
    try {
        cfg = JSON.parse(text) as DockerConfigFile;
    } catch {
        // Never echo the file: it holds secrets.
        return { source: `${file} (unparseable JSON; ignored)` };
    }
    for (const key of authKeys(host)) {
        const e = cfg.auths?.[key];
        if (!e) continue;
        const source = `Docker config ${file} (auths["${key}"])`;
        if (e.auth) {
            const dec = Buffer.from(e.auth, "base64").toString("utf8");
            const i = dec.indexOf(":");
            if (i > 0) return { source, username: dec.slice(0, i), password: dec.slice(i + 1), identityToken: e.identitytoken };
        }
        if (e.username !== undefined && e.password !== undefined) return { source, username: e.username, password: e.password, identityToken: e.identitytoken };
        if (e.identitytoken) return { source, identityToken: e.identitytoken };
    }
    const helper = cfg.credHelpers?.[host] ?? cfg.credsStore;
    if (helper) return { source: `${file} names credential helper "docker-credential-${helper}", which thinlayer does not run (anonymous)` };
    return undefined;
}

/** An ECR token via @aws-sdk/client-ecr, using the ambient AWS credential chain (a FIPS or dual-stack registry: that API endpoint too). */
async function fromEcr(ecr: EcrHost): Promise<Credentials> {
    const { registryId, region } = ecr;
    const source = `ECR GetAuthorizationToken (region ${region}, ambient AWS credentials)`;
    const { ECRClient, GetAuthorizationTokenCommand } = await import("@aws-sdk/client-ecr");
    const client = new ECRClient({ region, useFipsEndpoint: ecr.fips, useDualstackEndpoint: ecr.dualStack });
    try {
        const out = await client.send(new GetAuthorizationTokenCommand({ registryIds: [registryId] }));
        const token = out.authorizationData?.[0]?.authorizationToken;
        if (!token) return { source: `${source}: no token returned` };
        const dec = Buffer.from(token, "base64").toString("utf8");
        const i = dec.indexOf(":");
        return { source, username: dec.slice(0, i), password: dec.slice(i + 1) };
    } catch (e) {
        // The SDK's message names the missing credential or permission, never a secret.
        return { source: `${source} failed: ${e instanceof Error ? e.name + ": " + e.message : String(e)}` };
    } finally {
        client.destroy();
    }
}

/** Resolves credentials for a registry host by the documented order. */
export async function resolveCredentials(host: string, opts: { dockerConfig?: string } = {}): Promise<Credentials> {
    const ecr = parseEcrHost(host);
    if (ecr !== undefined) return fromEcr(ecr);
    return (
        fromDockerConfig(host, opts.dockerConfig ?? dockerConfigPath()) ?? {
            source: "anonymous (no credentials for this host in " + (opts.dockerConfig ?? dockerConfigPath()) + ")",
        }
    );
}

/** Whether a set of credentials carries a username/password pair. */
export function hasBasic(c: Credentials): c is Credentials & { username: string; password: string } {
    return c.username !== undefined && c.password !== undefined;
}
