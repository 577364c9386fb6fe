-- A message that goes out as several (a report: its text or chart, then the XLSX) records
-- each part as it is sent, and where the first one landed: a part that fails is tried
-- again alone, instead of the whole report going out twice to the leaders and the desk.
ALTER TABLE outbox ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;
