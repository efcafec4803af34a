/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Where the API is, when the page is served from elsewhere; same origin when unset. */
  readonly VITE_API_URL?: string;
}
