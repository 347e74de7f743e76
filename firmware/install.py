# App install on the board (see host/deploy.py): the host stages files under S, writes the list
# to S/.commit, then calls _install(). boot.py calls finish_pending(), so an install cut off by a
# power loss completes at the next boot. Kept terse: the host sends this text over the raw REPL.
import os,hashlib,binascii
S='.staging'
_b=bytearray(512)
_m=memoryview(_b)
def _ex(p):
 try:
  os.stat(p);return 1
 except OSError:
  return 0
def _h(p):
 try:
  f=open(p,'rb')
 except OSError:
  return '-'
 d=hashlib.sha256()
 while 1:
  n=f.readinto(_b)
  if not n:break
  d.update(_m[:n])
 f.close()
 return binascii.hexlify(d.digest()).decode()
def _rm(p):
 try:
  if os.stat(p)[0]&0x4000:
   for e in os.ilistdir(p):_rm(p+'/'+e[0])
   os.rmdir(p)
  else:
   os.remove(p)
 except OSError:
  pass
def _mk(p):
 q=''
 for s in p.split('/')[:-1]:
  q=q+s if not q else q+'/'+s
  if not _ex(q):os.mkdir(q)
def _install():
 f=open(S+'/.commit');L=f.read().split('\n');f.close()
 for p in L:
  if p.startswith('-'):
   if _ex(p[1:]):os.remove(p[1:])
  elif p and _ex(S+'/'+p):
   _mk(p)
   try:
    os.rename(S+'/'+p,p)
   except OSError:
    os.remove(p);os.rename(S+'/'+p,p)
 os.remove(S+'/.commit')
 _rm(S)
def finish_pending():
 if _ex(S+'/.commit'):
  _install();return 1
 return 0
