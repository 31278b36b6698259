/** The options every verb shares (osbake --project DIR --debug VERB ...). */
export interface GlobalOptions {
  project?: string;
  debug?: boolean;
}
