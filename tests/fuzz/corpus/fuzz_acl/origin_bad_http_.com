http://é.com
bob
devices/%u/#
devices/bob/x