// Issue 11 defect 9: the deploy manifests gave each pod its own emptyDir (Helm) or no volume at all (compose),
// so media uploaded through chat-sync could not be served by federation-ingress and vanished on restart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const deploy = path.join(__dirname, '..', '..', 'deploy');
const MEDIA_DIR = '/var/lib/fedgate/media';

describe('deploy manifests share one durable media store (defect 9)', () => {
  it('compose: chat-sync and federation-ingress mount the same named volume at <dataDir>/media', () => {
    const compose = parse(readFileSync(path.join(deploy, 'compose.yaml'), 'utf8')) as {
      services: Record<string, { volumes?: string[]; environment?: Record<string, string> }>;
      volumes: Record<string, unknown>;
    };
    const mediaVolumeOf = (service: string) => compose.services[service].volumes?.find((v) => v.endsWith(`:${MEDIA_DIR}`))?.split(':')[0];
    expect(mediaVolumeOf('chat-sync')).toBe('media');
    expect(mediaVolumeOf('federation-ingress')).toBe('media');
    expect(Object.keys(compose.volumes)).toContain('media');
    expect(compose.services['chat-sync'].environment?.FEDGATE_DATA_DIR ?? '/var/lib/fedgate').toBe('/var/lib/fedgate');
  });

  it('helm: a ReadWriteMany claim, mounted at <dataDir>/media by chat-sync and federation-ingress, kept on uninstall', () => {
    const helpers = readFileSync(path.join(deploy, 'helm/fedgate/templates/_helpers.tpl'), 'utf8');
    const claim = readFileSync(path.join(deploy, 'helm/fedgate/templates/media-pvc.yaml'), 'utf8');
    const values = parse(readFileSync(path.join(deploy, 'helm/fedgate/values.yaml'), 'utf8')) as { media: { size: string } };
    expect(helpers).toMatch(/has \.app \(list "federation-ingress" "chat-sync"\)[\s\S]*name: media, mountPath: \/var\/lib\/fedgate\/media/);
    expect(helpers).toMatch(/- name: media\n\s+persistentVolumeClaim:/);
    expect(claim).toContain('kind: PersistentVolumeClaim');
    expect(claim).toContain('accessModes: [ReadWriteMany]');
    expect(claim).toContain('helm.sh/resource-policy: keep');
    expect(values.media.size).toMatch(/^\d+[GT]i$/);
  });
});
