"use client";

import { useState } from "react";

import { Button } from "@/components/ui/button";
import { Collapsible, CollapsibleContent, CollapsibleTrigger } from "@/components/ui/collapsible";
import type { ShownParam } from "@/lib/data/signals";

/** "view SQL": the statement as sent, its parameter values and the command to re-run it. */
export function SqlToggle({ name, sql, params }: { name: string; sql: string; params: ShownParam[] }) {
  const [open, setOpen] = useState(false);
  const command = `pmpipe query "$SQL" ${params.map((p) => `--param ${p.name}=${p.value}`).join(" ")}`;
  return (
    <Collapsible open={open} onOpenChange={setOpen}>
      <CollapsibleTrigger asChild>
        <Button variant="outline" size="sm" data-testid={`sql-toggle-${name}`} aria-expanded={open}>
          {open ? "hide SQL" : "view SQL"}
        </Button>
      </CollapsibleTrigger>
      <CollapsibleContent className="mt-3 space-y-2" data-testid={`sql-${name}`}>
        <pre className="max-h-96 overflow-auto rounded-md bg-muted p-3 font-mono text-[11px] leading-relaxed whitespace-pre" data-testid="sql-text">
          {sql}
        </pre>
        <table className="text-[11px]">
          <tbody>
            {params.map((p) => (
              <tr key={p.name}>
                <td className="pr-3 font-mono">{p.name}</td>
                <td className="pr-3 font-mono">{p.value}</td>
                <td className="text-muted-foreground">{p.note ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="font-mono text-[11px] break-all text-muted-foreground">{command}</p>
      </CollapsibleContent>
    </Collapsible>
  );
}
