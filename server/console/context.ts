import type { Session } from "./api.js";

/** What a page gets: where to draw, who is signed in; it returns what stops its streams and timers. */
export interface PageContext {
  readonly root: HTMLElement;
  readonly session: Session;
  /** The part of the address after the page's name ("#/jobs/<id>" → ["<id>"]). */
  readonly params: readonly string[];
}

export type Page = (context: PageContext) => () => void;

export const hasRole = (session: Session, role: string): boolean => session.roles.includes(role) || session.roles.includes("admin");
