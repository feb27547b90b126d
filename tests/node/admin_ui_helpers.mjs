// Helpers for the @socket.io/admin-ui protocol tests: a bcrypt hash made with
// bcryptjs (what the admin UI's own server code uses), and an inbox that records
// every event an admin socket gets so that a test can wait for the first one
// matching a predicate (bounded in time).
import bcrypt from "bcryptjs";

export const ADMIN_USER = "admin";
export const ADMIN_PASSWORD = "correct horse battery staple";
/** `ADMIN_UI` for basic auth with ADMIN_USER / ADMIN_PASSWORD (cost 4: tests only). */
export const ADMIN_UI_BASIC = `${ADMIN_USER}:${bcrypt.hashSync(ADMIN_PASSWORD, 4)}`;

/** Records every event of `socket` ([name, ...args]) from now on. */
export class Inbox {
  constructor(socket) {
    this.items = [];
    this.waiters = new Set();
    socket.onAny((...ev) => {
      this.items.push(ev);
      for (const w of this.waiters) w();
    });
  }

  /** The recorded events named `name` (their argument arrays). */
  all(name) {
    return this.items.filter(([n]) => n === name).map(([, ...args]) => args);
  }

  /**
   * Resolves with the args of the first event named `name` (recorded from index
   * `from` on) for which `pred(...args)` holds; rejects after `ms`.
   */
  next(name, pred = () => true, ms = 8000, from = 0) {
    const find = () => this.items.slice(from).find(([n, ...args]) => n === name && pred(...args));
    const hit = find();
    if (hit) return Promise.resolve(hit.slice(1));
    return new Promise((resolve, reject) => {
      const w = () => {
        const h = find();
        if (h) {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve(h.slice(1));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        const seen = [...new Set(this.items.map(([n]) => n))].join(", ");
        reject(new Error(`timed out after ${ms} ms waiting for "${name}" (seen: ${seen})`));
      }, ms);
      this.waiters.add(w);
    });
  }

  /** Index where the next recorded event will go (for `next(..., from)`). */
  mark() {
    return this.items.length;
  }
}
