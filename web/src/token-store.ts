// The API token lives in this browser's local storage, like `cube login` keeps it in a file.
const key = 'cube.apiToken';

/** The saved token, or null. */
export function savedToken(): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Saves (or with null forgets) the token. */
export function saveToken(token: string | null): void {
  try {
    if (token === null) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, token);
  } catch {
    // storage disabled: the token lasts for this page only
  }
}
