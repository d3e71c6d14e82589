import type { ReactNode } from "react";

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="flex flex-col items-center justify-center gap-1 rounded-md border border-dashed px-4 py-8 text-center" data-testid="empty">
      <p className="text-sm font-medium">{title}</p>
      {children ? <p className="max-w-prose text-xs text-muted-foreground">{children}</p> : null}
    </div>
  );
}
