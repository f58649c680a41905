/**
 * Session-level pin of how the server lexes '...': run when a connection opens and after
 * each transaction. standard_conforming_strings decides how the server LEXES a query
 * string, and a whole string is lexed before any of it runs, so a role or database set to
 * off (ALTER ROLE ... SET) must never be in effect when rendered statements arrive (see
 * transactionSetup in ../transaction.ts for the SET LOCAL inside each transaction).
 */
export const PIN_SESSION = 'SET standard_conforming_strings = on';
