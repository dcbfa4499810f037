/**
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1) signed and checked with
 * node:crypto: Ed25519 (deterministic: the same statement gives the same envelope bytes) or ECDSA
 * P-256 with SHA-256 (randomized signatures: each run's envelope differs; ensure recognises an
 * existing attestation by the statement digest annotation, not by the envelope bytes).
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import { inputError } from "../errors";

export interface Envelope {
    payloadType: string;
    /** base64 of the payload bytes. */
    payload: string;
    signatures: Array<{ keyid: string; sig: string }>;
}

/** Pre-Authentication Encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body (LEN in ASCII decimal bytes). */
export function pae(payloadType: string, payload: Buffer): Buffer {
    const t = Buffer.from(payloadType, "utf8");
    return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

/** sha256 hex of the public key's SubjectPublicKeyInfo DER: the keyid we record. */
export function keyIdOf(key: KeyObject): string {
    const pub = key.type === "private" ? createPublicKey(key) : key;
    return createHash("sha256")
        .update(pub.export({ type: "spki", format: "der" }))
        .digest("hex");
}

function checkAlgorithm(key: KeyObject, what: string, file: string): void {
    const ok = key.asymmetricKeyType === "ed25519" || (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1");
    if (!ok)
        throw inputError({
            input: what,
            value: `${file} (${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? " " + key.asymmetricKeyDetails.namedCurve : ""})`,
            allowed: "an Ed25519 or ECDSA P-256 key in PEM",
            fix: "openssl genpkey -algorithm ed25519 -out key.pem (public: openssl pkey -in key.pem -pubout)",
        });
}

function readPem(file: string, what: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch (e) {
        throw inputError({
            input: what,
            value: JSON.stringify(file),
            allowed: "a readable PEM file",
            fix: `check the path (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        });
    }
}

/** Loads a private key (PEM, unencrypted PKCS#8 or SEC1). Never logs the key. */
export function loadPrivateKey(file: string, what = "--signing-key"): KeyObject {
    let key: KeyObject;
    try {
        key = createPrivateKey(readPem(file, what));
    } catch (e) {
        if ((e as Error).name === "ThinlayerError") throw e;
        throw inputError({
            input: what,
            value: JSON.stringify(file),
            allowed: "an unencrypted PEM private key (Ed25519 or ECDSA P-256)",
            fix: "openssl genpkey -algorithm ed25519 -out key.pem",
        });
    }
    checkAlgorithm(key, what, file);
    return key;
}

/** Loads a public key (PEM SPKI; a private key file gives its public half). */
export function loadPublicKey(file: string, what = "--public-key"): KeyObject {
    let key: KeyObject;
    try {
        key = createPublicKey(readPem(file, what));
    } catch (e) {
        if ((e as Error).name === "ThinlayerError") throw e;
        throw inputError({
            input: what,
            value: JSON.stringify(file),
            allowed: "a PEM public key (Ed25519 or ECDSA P-256)",
            fix: "openssl pkey -in key.pem -pubout -out key.pub",
        });
    }
    checkAlgorithm(key, what, file);
    return key;
}

const hashOf = (key: KeyObject) => (key.asymmetricKeyType === "ed25519" ? null : "sha256");

export function signEnvelope(payloadType: string, payload: Buffer, key: KeyObject): Envelope {
    const sig = sign(hashOf(key), pae(payloadType, payload), key);
    return { payloadType, payload: payload.toString("base64"), signatures: [{ keyid: keyIdOf(key), sig: sig.toString("base64") }] };
}

/** The payload when some signature verifies with `key`; otherwise throws saying why. */
export function verifyEnvelope(env: Envelope, key: KeyObject): Buffer {
    if (typeof env.payload !== "string" || typeof env.payloadType !== "string" || !Array.isArray(env.signatures))
        throw new Error("not a DSSE envelope (payloadType, payload, signatures)");
    const payload = Buffer.from(env.payload, "base64");
    const message = pae(env.payloadType, payload);
    const ok = env.signatures.some((s) => {
        try {
            return verify(hashOf(key), message, key, Buffer.from(s.sig, "base64"));
        } catch {
            return false;
        }
    });
    if (!ok)
        throw new Error(
            `no signature verifies with the public key ${keyIdOf(key).slice(0, 16)}… (signed by ${env.signatures.map((s) => (s.keyid || "?").slice(0, 16) + "…").join(", ") || "nobody"})`,
        );
    return payload;
}
