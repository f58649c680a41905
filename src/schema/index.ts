// One field-schema language for the whole plugin (see fields.ts).
export * from './errors';
export * from './duration';
export * from './names';
export * from './fields';
export * from './docs';
