/**
 * The rollback pin (`thinlayer:releaseImage`): deploy an earlier app image instead of building.
 *
 * A pin is a digest ref (`host/repo@sha256:…`) or a tag of the app repository. Either way the
 * program asks the registry through `@pulumi/docker`'s getRegistryImage — the right tool here: a
 * read-only lookup of a tag's (or digest's) manifest digest, run in preview too — and deploys
 * `repo@<digest>`. A pinned image the lifecycle has expired fails the preview with a clear error,
 * before anything changes.
 */
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { inputError } from "../lib/errors";

export type PinKind = { kind: "digest"; repository: string; digest: string } | { kind: "tag"; tag: string };

const DIGEST_REF = /^([^@\s]+)@(sha256:[a-f0-9]{64})$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Classifies a pin (pure); throws the config error for anything else. */
export function classifyPin(pin: string): PinKind {
    const m = DIGEST_REF.exec(pin);
    if (m) return { kind: "digest", repository: m[1], digest: m[2] };
    if (TAG.test(pin)) return { kind: "tag", tag: pin };
    throw pinError(pin, 'repo@sha256:<64 hex>, or a tag of appRepository such as app-0123456789ab', "use `thinlayer rollback` to write a valid pin, or `thinlayer rollback --clear`");
}

/** The name getRegistryImage is asked for (pure). */
export function pinLookupName(pin: PinKind, repositoryUrl: string): string {
    return pin.kind === "digest" ? `${pin.repository}@${pin.digest}` : `${repositoryUrl}:${pin.tag}`;
}

/**
 * Resolves a pin to `repo@sha256:…` through the registry. Fails (preview included) when the image is
 * gone, or when a digest pin's digest is not what the registry serves.
 */
export function resolveReleasePin(pin: string, repositoryUrl: pulumi.Input<string>, opts: pulumi.InvokeOptions = {}): pulumi.Output<string> {
    const kind = classifyPin(pin);
    return pulumi.output(repositoryUrl).apply(async (repo) => {
        const name = pinLookupName(kind, repo);
        let found: docker.GetRegistryImageResult;
        try {
            found = await docker.getRegistryImage({ name }, opts);
        } catch (e) {
            const why = (e instanceof Error ? e.message : String(e)).split("\n").map((l) => l.trim()).filter((l) => l !== "").join(" ").slice(0, 300);
            throw pinError(pin, `an image present in the registry; looking up ${name} failed: ${why}`,
                "pin a release still inside the lifecycle window (`thinlayer rollback --steps N`), or build from source (`thinlayer rollback --clear`)");
        }
        const digest = found.sha256Digest;
        if (!/^sha256:[a-f0-9]{64}$/.test(digest) || (kind.kind === "digest" && digest !== kind.digest)) {
            throw pinError(pin, `the digest the registry serves for ${name} (it reports ${JSON.stringify(digest)})`, "re-pin with `thinlayer rollback --to <digest>` from the registry");
        }
        return `${kind.kind === "digest" ? kind.repository : repo}@${digest}`;
    });
}

function pinError(pin: string, allowed: string, fix: string): pulumi.RunError {
    return new pulumi.RunError(inputError({ input: "thinlayer:releaseImage", value: JSON.stringify(pin), allowed, fix }).message);
}
