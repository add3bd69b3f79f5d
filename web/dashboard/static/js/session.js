// The signed-in session: tokens kept in memory only, the access token refreshed before it
// expires, every API call made with it, and problem+json answers turned into ApiError.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.message || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.fieldErrors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText };
  }
}

async function postJson(path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response.json();
}

// Refresh this long before the access token expires (or at 80% of a short lifetime).
const REFRESH_MARGIN_S = 60;

export class Session {
  #access = null;
  #refreshToken = null;
  #timer = null;
  #refreshing = null;
  #listeners = new Set();
  user = null;

  get signedIn() {
    return this.#access !== null && this.user !== null;
  }

  get accessToken() {
    return this.#access;
  }

  can(...roles) {
    return this.user !== null && roles.includes(this.user.role);
  }

  onChange(listener) {
    this.#listeners.add(listener);
  }

  async login(username, password) {
    this.#adopt(await postJson("/api/v1/auth/login", { username, password }));
    try {
      this.user = await this.json("/api/v1/auth/me");
    } catch (error) {
      this.#drop();
      throw error;
    }
    this.#emit(null);
  }

  async logout() {
    const token = this.#access;
    this.#drop();
    this.#emit(null);
    if (token) {
      try {
        await postJson("/api/v1/auth/logout", {}, token);
      } catch {
        // The session is gone from this page either way.
      }
    }
  }

  // One refresh at a time; parallel callers share it.
  refresh() {
    if (this.#refreshing === null) {
      this.#refreshing = this.#rotate().finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  async #rotate() {
    if (this.#refreshToken === null) throw new ApiError(401, { detail: "not signed in" });
    try {
      this.#adopt(await postJson("/api/v1/auth/refresh", { refresh_token: this.#refreshToken }));
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) {
        this.#drop();
        this.#emit("Your session has ended; please sign in again.");
      }
      throw error;
    }
  }

  #adopt(tokens) {
    this.#access = tokens.access_token;
    this.#refreshToken = tokens.refresh_token;
    clearTimeout(this.#timer);
    const lifetime = Number(tokens.expires_in) || 900;
    const after = Math.max(1, Math.min(lifetime - REFRESH_MARGIN_S, lifetime * 0.8));
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), after * 1000);
  }

  #drop() {
    clearTimeout(this.#timer);
    this.#access = null;
    this.#refreshToken = null;
    this.user = null;
  }

  #emit(reason) {
    for (const listener of this.#listeners) listener(reason);
  }

  // fetch with the access token; a 401 is retried once after a refresh.
  async request(method, path, { body, contentType = "application/json", retry = true } = {}) {
    const headers = { Authorization: `Bearer ${this.#access}` };
    let payload;
    if (body !== undefined) {
      headers["Content-Type"] = contentType;
      payload = contentType === "application/json" ? JSON.stringify(body) : body;
    }
    const response = await fetch(path, { method, headers, body: payload });
    if (response.status === 401 && retry && this.#refreshToken !== null) {
      await this.refresh();
      return this.request(method, path, { body, contentType, retry: false });
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    return response;
  }

  async json(path, options = {}) {
    const response = await this.request(options.method || "GET", path, options);
    return response.status === 204 ? null : response.json();
  }

  // A WebSocket on this host; the token travels as a subprotocol, not in the URL.
  socket(path) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return new WebSocket(`${scheme}//${location.host}${path}`, ["bearer", this.#access]);
  }
}
