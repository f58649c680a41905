// Object names in paths and configs (transit keys, PKI roles, managed keys, kms providers):
// 1-128 letters, digits, "_", "." or "-", starting with a letter or digit. Vault's
// GenericNameRegex (`\w(([\w-.]+)?\w)?`) has no length cap and must also end with a word
// character; this plugin keeps its own, capped rule everywhere (a storage key stays
// bounded) and declares it once here.

/** Regex source of a name (unanchored, no group). */
export const NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9_.-]{0,127}';

/** The name as a named capture group for a path pattern: `(?<name>…)`. */
export const nameGroup = (group = 'name') => `(?<${group}>${NAME_PATTERN})`;

const NAME_RE = new RegExp(`^${NAME_PATTERN}$`);

/** Does `s` follow the name rule (nameRule says it in words)? */
export const isName = (s: string): boolean => NAME_RE.test(s);

/** What a bad name is told, with what is named ("managed key name"). */
export const nameRule = (what: string) => `${what} must be 1-128 letters, digits, "_", "." or "-", starting with a letter or digit`;
