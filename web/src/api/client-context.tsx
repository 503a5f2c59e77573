import { createContext, useContext, type ReactNode } from 'react';
import type { ApiClient } from './client.ts';

const ClientContext = createContext<ApiClient | null>(null);

/** Makes the signed-in client available to every view below it. */
export function ClientProvider(props: { client: ApiClient; children: ReactNode }) {
  return <ClientContext.Provider value={props.client}>{props.children}</ClientContext.Provider>;
}

/** The signed-in API client; only views shown after login call it. */
export function useClient(): ApiClient {
  const client = useContext(ClientContext);
  if (client === null) throw new Error('useClient outside ClientProvider');
  return client;
}
