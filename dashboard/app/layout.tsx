import type { Metadata, Viewport } from "next";
import Link from "next/link";
import type { ReactNode } from "react";

import { Nav } from "@/components/nav";

import "./globals.css";

export const metadata: Metadata = {
  title: { default: "Polymarket pipeline", template: "%s · Polymarket pipeline" },
  description: "Polymarket markets, volume, order books and pipeline freshness from ClickHouse",
};

export const viewport: Viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body className="min-h-dvh antialiased">
        <header className="sticky top-0 z-20 border-b bg-background/90 backdrop-blur">
          <div className="mx-auto flex h-12 max-w-7xl items-center justify-between gap-2 px-3 sm:px-6">
            <Link href="/" className="flex items-center gap-2 text-sm font-semibold">
              <span className="inline-block size-2.5 rounded-sm bg-up" aria-hidden />
              <span className="hidden sm:inline">Polymarket pipeline</span>
              <span className="sm:hidden">PM</span>
            </Link>
            <Nav />
          </div>
        </header>
        <main className="mx-auto max-w-7xl px-3 py-4 sm:px-6 sm:py-6">{children}</main>
        <footer className="mx-auto max-w-7xl px-3 pb-6 text-xs text-muted-foreground sm:px-6">
          All times UTC. Volume counts Data API fills only (WebSocket trades are latency copies of the same fills). Charts by TradingView Lightweight Charts.
        </footer>
      </body>
    </html>
  );
}
