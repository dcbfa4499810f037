/** The OCI Distribution client and its helpers. */
export * from "./client";
export * from "./credentials";
export * from "./mediatypes";
export * from "./reference";
