/**
 * The cost receipt's input: the plan JSON `thinlayer plan --json` prints for a stack, plus the two
 * facts only the receipt needs (the measured upload, the settings keys that change). Plain JSON, so
 * the renderer (render.ts) is a pure function of it.
 */
import type { Plan } from "../plan";
import type { MigrationSafety } from "../migrations";

export type ImageStatusName = "build" | "reuse" | "unknown" | "pinned";

/** What `thinlayer plan --json` prints for one stack. */
export interface PlanJson extends Plan {
    status: Record<"base" | "app", { status: ImageStatusName; reason: string }>;
    registry: string;
    releaseImage: string | null;
    migrationSafety: MigrationSafety;
}

/** Bytes a deploy would send to the registry for one image. */
export type UploadEstimate =
    /** The daemonless app layer, written for real (in memory) exactly as ensure writes it. */
    | { kind: "measured"; bytes: number; tarBytes: number; entries: number }
    /** Nothing to upload: the tag exists, or a rollback pin builds nothing. */
    | { kind: "none"; reason: string }
    /** Not known before the build (a builder's layers are its RUN steps' output). */
    | { kind: "unknown"; reason: string };

/** Settings keys (never values) that differ from the baseline. */
export type SettingsChange = { kind: "compared"; source: string; added: string[]; removed: string[]; changed: string[] } | { kind: "unknown"; reason: string };

export interface ReceiptStack {
    plan: PlanJson;
    /** The project directory: warnings name files relative to it (the checkout's root in CI). */
    projectDir: string;
    /** thinlayer:builder (auto, buildx, docker, podman, buildah). */
    builder: string;
    /** Whether --registry-check was given. */
    registryCheck: boolean;
    upload: Record<"base" | "app", UploadEstimate>;
    settings: SettingsChange;
}

/** The hidden marker the preview workflow finds its pull request comment by. */
export const RECEIPT_MARKER = "<!-- thinlayer-receipt -->";
