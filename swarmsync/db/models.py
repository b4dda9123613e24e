"""SQLAlchemy models of SwarmSync's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ArchiveRecord(Base):
    """One archived job result: where it is, what it was, and its checksums."""

    __tablename__ = "archive_index"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the flow-run id
    image: Mapped[str] = mapped_column(String(512))
    image_digest: Mapped[str | None] = mapped_column(String(200))
    command: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    archive_path: Mapped[str] = mapped_column(String(1024))
    archive_block: Mapped[str | None] = mapped_column(String(255))  # the store, when not the default
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    output_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class WorkerTelemetry(Base):
    """The latest heartbeat of a SwarmSync worker and its Docker host."""

    __tablename__ = "worker_telemetry"

    worker_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    pool: Mapped[str] = mapped_column(String(200), index=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    docker_version: Mapped[str | None] = mapped_column(String(64))
    cpus: Mapped[int | None] = mapped_column(Integer)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    running_jobs: Mapped[int] = mapped_column(Integer, default=0)
    containers_running: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
