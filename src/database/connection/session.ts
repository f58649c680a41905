/**
 * Session-level pin of how the server lexes '...': run when a connection opens and after
 * each transaction. standard_conforming_strings decides how the server LEXES a query
 * string, and a whole string is lexed before any of it runs, so a role or database set to
 * off (ALTER ROLE ... SET) must never be in effect when rendered statements arrive (see
 * transactionSetup in ../transaction.ts for the SET LOCAL inside each transaction).
 */
export const PIN_SESSION = 'SET standard_conforming_strings = on';

/**
 * What a connection runs once it is open: the pin above, and UTC as the session's time zone
 * unless connection_url sets one (as Vault: its connutil adds timezone=UTC to postgres://
 * URLs), so statements that use a time without its offset, or the session's zone, see
 * what they would under Vault whatever zone the server, database or role has. A SET, not
 * a startup parameter: PgBouncer before 1.20 refuses connections that send `options`.
 */
export function connectionSetup(t: { utcSession?: boolean }): string {
  return t.utcSession === false ? PIN_SESSION : `${PIN_SESSION}; SET TimeZone = 'UTC'`;
}
