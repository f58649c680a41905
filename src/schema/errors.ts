// Schema code never chooses an error type: every parser takes the caller's constructor, so
// the same rule yields a Vault 400 (secrets), a gRPC InvalidArgument (database) or a
// KeyError (managed keys) without a catch-and-rethrow at each call site.

/** Makes the error a caller wants for a bad value; the message already names the field. */
export type Fail = (message: string) => Error;

/** The error of schema code used on its own (tests, tools). */
export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

/** The default Fail: a SchemaError with the message. */
export const schemaError: Fail = (m) => new SchemaError(m);
