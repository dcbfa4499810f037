/**
 * Attaching the provenance statement to an image, and finding it again (registry I/O).
 *
 * The statement (or its DSSE envelope) is the one layer of an OCI artifact manifest
 * (artifactType application/vnd.in-toto+json, the empty config, `subject` = the image), pushed by
 * digest. Discovery: the referrers API when a probe shows the registry has it (ECR does), else the
 * referrers tag scheme of the distribution spec: tag `sha256-<hex of the image digest>` holding an
 * index of the referrers, fetched, merged and put back (Distribution 2.8 has no referrers API).
 *
 * Idempotent: the manifest carries the statement digest as an annotation, so a rerun with the same
 * inputs finds it and writes nothing; on the tag scheme with us as the only referrer that check is
 * two HEAD requests (the subject, and the tag whose index bytes we can predict).
 */
import type { KeyObject } from "node:crypto";
import { RegistryClient } from "../oci/client";
import { sha256 } from "../hashing/digest";
import { OCI_INDEX, OCI_MANIFEST, type Descriptor } from "../oci/mediatypes";
import { keyIdOf, signEnvelope, verifyEnvelope, type Envelope } from "./dsse";
import { canonicalJson, DSSE_MEDIA_TYPE, IN_TOTO_MEDIA_TYPE, parseStatement, PREDICATE_TYPE, statementBytes, type Statement } from "./statement";

const EMPTY_CONFIG = { mediaType: "application/vnd.oci.empty.v1+json", bytes: Buffer.from("{}") };
/** Annotations on the artifact manifest (and so on its descriptor in a referrers list). */
const ANNOTATION_STATEMENT = "dev.thinlayer.statement.digest";
const ANNOTATION_SIGNER = "dev.thinlayer.signer";
const ANNOTATION_PREDICATE = "in-toto.io/predicate-type";

export interface AttachResult {
    /** Digest of the artifact manifest. */
    digest: string;
    action: "attached" | "exists";
    /** How it is found: the referrers API or the sha256-<hex> tag. */
    via: "referrers" | "tag";
    signed: boolean;
    bytesUploaded: number;
}

/** The tag of the referrers tag scheme for a subject digest. */
export function referrersTag(digest: string): string {
    return digest.replace(":", "-");
}

interface Artifact {
    manifest: Buffer;
    descriptor: Descriptor & { artifactType: string };
    layer: Buffer;
}

/** The artifact manifest for a statement (pure apart from the signature). */
export function buildArtifact(statement: Statement, subject: Descriptor, key?: KeyObject): Artifact {
    const sbytes = statementBytes(statement);
    const layer = key ? Buffer.from(canonicalJson(signEnvelope(IN_TOTO_MEDIA_TYPE, sbytes, key))) : sbytes;
    const annotations: Record<string, string> = {
        [ANNOTATION_PREDICATE]: PREDICATE_TYPE,
        [ANNOTATION_STATEMENT]: sha256(sbytes),
        ...(key ? { [ANNOTATION_SIGNER]: keyIdOf(key) } : {}),
    };
    const m = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: IN_TOTO_MEDIA_TYPE,
        config: { mediaType: EMPTY_CONFIG.mediaType, digest: sha256(EMPTY_CONFIG.bytes), size: EMPTY_CONFIG.bytes.length },
        layers: [{ mediaType: key ? DSSE_MEDIA_TYPE : IN_TOTO_MEDIA_TYPE, digest: sha256(layer), size: layer.length }],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
        annotations,
    };
    const manifest = Buffer.from(canonicalJson(m));
    return {
        manifest,
        layer,
        descriptor: { mediaType: OCI_MANIFEST, artifactType: IN_TOTO_MEDIA_TYPE, digest: sha256(manifest), size: manifest.length, annotations },
    };
}

/** The fallback tag's index with `descriptors` (our bytes: canonical, so predictable). */
function referrersIndex(descriptors: unknown[]): Buffer {
    return Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors }));
}

const isOurs = (d: Record<string, unknown>, statementDigest: string, signer: string | undefined) => {
    const a = (d.annotations ?? {}) as Record<string, string>;
    return a[ANNOTATION_STATEMENT] === statementDigest && a[ANNOTATION_SIGNER] === signer;
};

/** Thrown by attachStatement when `subjectPut` settles false: the subject never came, nothing naming it was put. */
export class SubjectNotPutError extends Error {
    constructor(digest: string) {
        super(`the image ${digest} was not put; its attestation was not either`);
        this.name = "SubjectNotPutError";
    }
}

/**
 * Makes sure `statement` is attached to `repo@digest`; writes nothing when it already is.
 *
 * Early attachment (ensure, while it pushes the image): with `subject` (the image's descriptor,
 * known before it is in the registry) and `subjectPut` (settles once the image manifest is put:
 * true, or false when it will not be), the artifact's two blobs go up while the image is pushed;
 * the probes (which scheme, already attached?) and the manifests that name the subject wait for
 * it, so no registry is asked about, or holds a referrer of, an image it does not have.
 * `subjectPut` false: SubjectNotPutError, and nothing names the subject.
 */
export async function attachStatement(
    client: RegistryClient,
    repo: string,
    digest: string,
    statement: Statement,
    key?: KeyObject,
    early?: { subject: Descriptor; subjectPut: Promise<boolean> },
): Promise<AttachResult> {
    const up0 = client.stats.bytesUploaded;
    const tag = referrersTag(digest);
    const pushBlobs = (art: Artifact) =>
        Promise.all([
            client.ensureBlob(repo, { digest: sha256(EMPTY_CONFIG.bytes), size: EMPTY_CONFIG.bytes.length, data: EMPTY_CONFIG.bytes }),
            client.ensureBlob(repo, { digest: sha256(art.layer), size: art.layer.length, data: art.layer }),
        ]);
    let subject: Descriptor | undefined;
    let tagged: Awaited<ReturnType<RegistryClient["headManifest"]>>;
    let listed: Awaited<ReturnType<RegistryClient["getReferrers"]>>;
    // Built once: an ECDSA signature is randomized, so a second build would name other blobs.
    let built: Artifact | undefined;
    if (early) {
        subject = early.subject;
        built = buildArtifact(statement, subject, key);
        // The reads need not wait for the subject (the referrers API answers for any digest): made
        // alongside the blobs, so only the writes are left once the image is put.
        const reads = Promise.all([client.headManifest(repo, tag), client.getReferrers(repo, digest)]);
        reads.catch(() => undefined); // awaited below, after the blobs, or settled before a throw
        try {
            await pushBlobs(built);
            if (!(await early.subjectPut)) throw new SubjectNotPutError(digest);
        } catch (e) {
            await reads.catch(() => undefined); // nothing of ours left running once we throw
            throw e;
        }
        [tagged, listed] = await reads;
    } else {
        // Independent reads at once: the subject, the tag scheme's tag, the referrers API.
        [subject, tagged, listed] = await Promise.all([client.headManifest(repo, digest), client.headManifest(repo, tag), client.getReferrers(repo, digest)]);
        if (!subject) throw new Error(`image ${client.host}/${repo}@${digest} not found`);
    }
    const art = built ?? buildArtifact(statement, subject, key);
    const blobsUp = built !== undefined;
    const statementDigest = sha256(statementBytes(statement));
    const signer = key ? keyIdOf(key) : undefined;
    const done = (action: AttachResult["action"], via: AttachResult["via"], d = art.descriptor.digest): AttachResult => ({
        digest: d,
        action,
        via,
        signed: key !== undefined,
        bytesUploaded: client.stats.bytesUploaded - up0,
    });

    // The common rerun on a tag-scheme registry: the tag holds exactly our one-entry index.
    if (tagged?.digest === sha256(referrersIndex([art.descriptor]))) return done("exists", "tag");

    const push = async () => {
        if (!blobsUp) await pushBlobs(art);
        await client.putManifest(repo, art.descriptor.digest, art.manifest, OCI_MANIFEST);
    };
    if (listed) {
        const found = listed.manifests.find((d) => isOurs(d, statementDigest, signer));
        if (found) return done("exists", "referrers", String(found.digest));
        await push(); // the registry indexes the subject itself
        return done("attached", "referrers");
    }
    // Tag scheme: fetch, merge, put (a concurrent writer can lose an entry; see docs).
    let existing: Array<Record<string, unknown>> = [];
    if (tagged) {
        const idx = JSON.parse((await client.getManifest(repo, tag)).bytes.toString("utf8")) as { manifests?: Array<Record<string, unknown>> };
        existing = idx.manifests ?? [];
        const found = existing.find((d) => isOurs(d, statementDigest, signer));
        if (found) return done("exists", "tag", String(found.digest));
    }
    await push();
    const merged = [...existing.filter((d) => d.digest !== art.descriptor.digest), art.descriptor];
    const idx = referrersIndex(merged);
    await client.putManifest(repo, tag, idx, OCI_INDEX);
    return done("attached", "tag");
}

/** One attestation found on an image. */
export interface FoundAttestation {
    /** Artifact manifest digest. */
    digest: string;
    via: "referrers" | "tag";
    statement?: Statement;
    envelope?: Envelope;
    /** Why it could not be read (then `statement` is absent). */
    error?: string;
}

/** The referrer descriptors of `repo@digest`: by the referrers API when present, else the tag. */
async function listReferrers(
    client: RegistryClient,
    repo: string,
    digest: string,
): Promise<{ via: "referrers" | "tag"; manifests: Array<Record<string, unknown>> }> {
    const listed = await client.getReferrers(repo, digest);
    if (listed) return { via: "referrers", manifests: listed.manifests };
    const tag = referrersTag(digest);
    if (!(await client.headManifest(repo, tag))) return { via: "tag", manifests: [] };
    const idx = JSON.parse((await client.getManifest(repo, tag)).bytes.toString("utf8")) as { manifests?: Array<Record<string, unknown>> };
    return { via: "tag", manifests: idx.manifests ?? [] };
}

/**
 * The thinlayer attestations attached to `repo@digest`, read and parsed. With `publicKey`, a
 * statement is only taken from an envelope whose signature verifies (else `error` says why).
 */
export async function findAttestations(client: RegistryClient, repo: string, digest: string, publicKey?: KeyObject): Promise<FoundAttestation[]> {
    const { via, manifests } = await listReferrers(client, repo, digest);
    const out: FoundAttestation[] = [];
    for (const d of manifests) {
        if (d.artifactType !== IN_TOTO_MEDIA_TYPE) continue;
        const a = (d.annotations ?? {}) as Record<string, string>;
        if (a[ANNOTATION_PREDICATE] !== undefined && a[ANNOTATION_PREDICATE] !== PREDICATE_TYPE) continue;
        const found: FoundAttestation = { digest: String(d.digest), via };
        try {
            const m = JSON.parse((await client.getManifest(repo, String(d.digest))).bytes.toString("utf8")) as { layers?: Descriptor[]; subject?: Descriptor };
            if (m.subject?.digest !== digest) throw new Error(`its subject is ${m.subject?.digest ?? "(none)"}, not ${digest}`);
            const layer = m.layers?.[0];
            if (!layer) throw new Error("the artifact has no layer");
            const bytes = await client.getBlob(repo, layer.digest);
            let payload: Buffer;
            if (layer.mediaType === DSSE_MEDIA_TYPE) {
                found.envelope = JSON.parse(bytes.toString("utf8")) as Envelope;
                payload = publicKey ? verifyEnvelope(found.envelope, publicKey) : Buffer.from(found.envelope.payload, "base64");
                if (found.envelope.payloadType !== IN_TOTO_MEDIA_TYPE) throw new Error(`envelope payloadType ${found.envelope.payloadType}`);
            } else {
                if (publicKey) throw new Error("the attestation is not signed (a --public-key was given)");
                payload = bytes;
            }
            const s = parseStatement(payload);
            if (!s.subject.some((x) => `sha256:${x.digest.sha256}` === digest)) throw new Error(`the statement's subject is not ${digest}`);
            found.statement = s;
        } catch (e) {
            found.error = (e as Error).message;
        }
        out.push(found);
    }
    return out;
}
